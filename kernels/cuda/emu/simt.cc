// The emulator's SIMT machine (include/simt.h): a launch runs its blocks one after another; a block's threads
// are fibers, each with its own stack, run one at a time on the calling thread, each until it waits at a
// barrier or returns. A __syncthreads releases its waiters when every thread still running has arrived;
// a warp operation releases its lanes when every lane of its mask has arrived, and then exchanges their
// values. What would hang or be undefined on a GPU is reported as the launch's error instead, naming the
// kernel, block, thread and source line: threads waiting at different barriers (a deadlock), a lane left
// out of its own mask, lanes of one operation with different masks or at different calls, a mask naming a
// lane that has returned or does not exist, a shuffle reading a lane outside the mask. A memory fault in a
// kernel (runtime.cc puts an inaccessible page after every buffer) prints the same names before the
// process dies.
//
// Threads run in an order drawn afresh after each barrier, and blocks in a shuffled order too
// (RINGLET_CUDA_EMU_SEED, default 1; 0 runs everything in index order): a kernel that reads what another
// thread writes without a barrier between them, or that depends on the order of its blocks, gives results
// that change with the seed, as they would change from run to run on a GPU.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xmmintrin.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if !defined(__x86_64__)
#error "the CUDA emulator switches between its fibers' stacks in x86-64 assembly"
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// Saves the callee-saved registers and the floating-point control words on the current stack, stores the
// stack pointer in *save, and resumes the context whose stack pointer is `load`.
extern "C" void ringlet_emu_switch(void** save, void* load);
asm(R"(
  .text
  .p2align 4
  .globl ringlet_emu_switch
  .hidden ringlet_emu_switch
  .type ringlet_emu_switch, @function
ringlet_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  fnstcw (%rsp)
  stmxcsr 8(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  fldcw (%rsp)
  ldmxcsr 8(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ringlet_emu_switch, .-ringlet_emu_switch
)");

namespace ringlet_emu {

bool nearest_buffer(uintptr_t p, uintptr_t* base, size_t* bytes);  // runtime.cc

namespace {

constexpr size_t STACK_BYTES = 256u << 10;
constexpr unsigned MAX_THREADS = 1024;

enum class State { runnable, block_barrier, warp_barrier, exited };

struct Fiber {
  void* sp = nullptr;
  char* stack = nullptr;  // a guard page, then STACK_BYTES
  State state = State::exited;
  uint3 idx{};
  std::source_location where;
  unsigned mask = 0;
  uint64_t bits = 0;  // the value deposited, then the value received
  const void* deposit = nullptr;  // a warp-collective operation's deposit
  Shuffle kind = Shuffle::none;
  int arg = 0, width = 32;
};

struct Warp {
  unsigned arrived = 0, exited = 0, mask = 0;
  std::source_location where;
};

struct Machine {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  void* scheduler_sp = nullptr;
  int current = -1;
  const std::function<void()>* body = nullptr;
  const char* kernel = "";
  unsigned threads = 0, live = 0, at_block_barrier = 0;
  std::source_location block_where;
  std::deque<int> runnable;
  std::string error;  // the first misuse found in this launch
  uint64_t rng = 0;
  bool in_kernel = false;
  struct sigaction previous_segv {};
};
Machine g;

uint64_t next_random() {
  uint64_t z = (g.rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Appends `ids` to the run queue, shuffled unless the seed is 0.
void make_runnable(std::vector<int>& ids) {
  if (g.rng != 0)
    for (size_t i = ids.size(); i > 1; i--) std::swap(ids[i - 1], ids[next_random() % i]);
  for (int id : ids) {
    g.fibers[id].state = State::runnable;
    g.runnable.push_back(id);
  }
}

std::string site(const std::source_location& w) {
  std::string file = w.file_name();
  const size_t slash = file.rfind('/');
  if (slash != std::string::npos) file = file.substr(slash + 1);
  return file + ":" + std::to_string(w.line());
}

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && std::strcmp(a.file_name(), b.file_name()) == 0;
}

std::string coords(const uint3& v) {
  return "(" + std::to_string(v.x) + ", " + std::to_string(v.y) + ", " + std::to_string(v.z) + ")";
}

void misuse(int id, const std::string& what) {
  if (!g.error.empty()) return;
  g.error = std::string("kernel ") + g.kernel + ", block " + coords(blockIdx) + ", thread " +
            coords(g.fibers[id].idx) + ": " + what;
}

[[noreturn]] void fiber_main() {
  (*g.body)();
  Fiber& f = g.fibers[g.current];
  f.state = State::exited;
  ringlet_emu_switch(&f.sp, g.scheduler_sp);
  __builtin_unreachable();
}

// A fresh frame at the top of the fiber's stack, laid out as ringlet_emu_switch leaves one, whose return
// address enters fiber_main with the stack aligned as after a call.
void prepare(Fiber& f) {
  if (!f.stack) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void* m = mmap(nullptr, page + STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "ringlet CUDA emulator: no memory for a thread's stack\n");
      std::abort();
    }
    mprotect(m, page, PROT_NONE);  // a stack overflow faults
    f.stack = static_cast<char*>(m) + page;
  }
  uint16_t fpcw;
  asm volatile("fnstcw %0" : "=m"(fpcw));
  uint64_t* s = reinterpret_cast<uint64_t*>(f.stack + STACK_BYTES);
  *--s = 0;                                          // fiber_main's return address: it never returns
  *--s = reinterpret_cast<uint64_t>(&fiber_main);    // where the switch returns to
  for (int r = 0; r < 6; r++) *--s = 0;              // rbp, rbx, r12-r15
  *--s = _mm_getcsr();                               // at offset 8
  *--s = fpcw;                                       // at offset 0
  f.sp = s;
}

// The fiber that runs now stops at a barrier (or has returned): back to the scheduler.
void yield(Fiber& f) { ringlet_emu_switch(&f.sp, g.scheduler_sp); }

void release_block_barrier() {
  std::vector<int> ids;
  for (unsigned t = 0; t < g.threads; t++)
    if (g.fibers[t].state == State::block_barrier) ids.push_back((int)t);
  g.at_block_barrier = 0;
  make_runnable(ids);
}

unsigned lanes_of_warp(unsigned w) {
  const unsigned n = g.threads - 32 * w < 32 ? g.threads - 32 * w : 32;
  return n == 32 ? ~0u : (1u << n) - 1;
}

// Every lane of the warp's mask has arrived: each receives the value its operation names.
void release_warp(unsigned w) {
  Warp& warp = g.warps[w];
  uint64_t got[32];
  for (unsigned lane = 0; lane < 32; lane++) {
    if (!(warp.mask >> lane & 1)) continue;
    const Fiber& f = g.fibers[32 * w + lane];
    const unsigned group_end = (lane / f.width + 1) * f.width;
    unsigned src = lane;
    if (f.kind == Shuffle::xor_lane) src = lane ^ (unsigned)f.arg;
    if (f.kind == Shuffle::down) src = lane + (unsigned)f.arg;
    if (f.kind == Shuffle::index) src = lane / f.width * f.width + (unsigned)f.arg % f.width;
    if (src >= group_end) src = lane;  // past its group of `width` lanes: a lane keeps its own value
    if (src >= 32 || !(warp.mask >> src & 1)) {
      misuse(32 * w + lane, "a shuffle at " + site(f.where) + " reads lane " + std::to_string(src) +
                                ", which its mask leaves out");
      return;
    }
    got[lane] = g.fibers[32 * w + src].bits;
  }
  std::vector<int> ids;
  for (unsigned lane = 0; lane < 32; lane++)
    if (warp.mask >> lane & 1) {
      g.fibers[32 * w + lane].bits = got[lane];
      ids.push_back((int)(32 * w + lane));
    }
  warp.arrived = 0;
  make_runnable(ids);
}

// The scheduler's bookkeeping after fiber `id` stopped.
void stopped(int id) {
  Fiber& f = g.fibers[id];
  const unsigned w = (unsigned)id / 32, bit = 1u << (id % 32);
  Warp& warp = g.warps[w];
  switch (f.state) {
    case State::exited:
      g.live--;
      warp.exited |= bit;
      if (warp.arrived && (warp.mask & bit))
        misuse(id, "returned while the lanes of its warp wait for it at " + site(warp.where));
      if (g.at_block_barrier > 0 && g.at_block_barrier == g.live) release_block_barrier();
      return;
    case State::block_barrier:
      if (g.at_block_barrier == 0)
        g.block_where = f.where;
      else if (!same_site(g.block_where, f.where))
        misuse(id, "waits at __syncthreads at " + site(f.where) + " while other threads wait at " +
                       site(g.block_where));
      if (++g.at_block_barrier == g.live) release_block_barrier();
      return;
    case State::warp_barrier: {
      if (!(f.mask & bit)) return misuse(id, "a warp operation at " + site(f.where) + " with a mask that leaves out its own lane");
      if (f.mask & ~lanes_of_warp(w))
        return misuse(id, "a warp operation at " + site(f.where) + " names lanes past the end of the block");
      if (f.mask & warp.exited)
        return misuse(id, "a warp operation at " + site(f.where) + " names lanes that have returned");
      if (f.width < 1 || f.width > 32 || (f.width & (f.width - 1)))
        return misuse(id, "a shuffle at " + site(f.where) + " with a width that is not a power of two up to 32");
      if (warp.arrived == 0) {
        warp.mask = f.mask;
        warp.where = f.where;
      } else if (warp.mask != f.mask || !same_site(warp.where, f.where)) {
        return misuse(id, "a warp operation at " + site(f.where) + " while lanes of its warp wait at " +
                              site(warp.where) + (warp.mask != f.mask ? " with another mask" : ""));
      }
      warp.arrived |= bit;
      if (warp.arrived == warp.mask) release_warp(w);
      return;
    }
    case State::runnable: return;
  }
}

// Nothing can run and threads are still waiting: say where each waits.
void deadlock() {
  std::string where;
  int shown = 0;
  for (unsigned t = 0; t < g.threads && shown < 4; t++) {
    const Fiber& f = g.fibers[t];
    if (f.state == State::exited) continue;
    where += (shown++ ? "; " : "") + std::string("thread ") + coords(f.idx) +
             (f.state == State::block_barrier ? " at __syncthreads " : " at a warp operation ") + site(f.where);
  }
  g.error = std::string("kernel ") + g.kernel + ", block " + coords(blockIdx) +
            ": its threads wait at barriers that can never complete (a GPU would hang): " + where;
}

void run_block() {
  g.live = g.threads;
  g.at_block_barrier = 0;
  for (Warp& w : g.warps) w = Warp{};
  std::vector<int> ids(g.threads);
  for (unsigned t = 0; t < g.threads; t++) {
    Fiber& f = g.fibers[t];
    f.idx = uint3{t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y)};
    prepare(f);
    ids[t] = (int)t;
  }
  g.runnable.clear();
  make_runnable(ids);
  while (g.live > 0 && g.error.empty()) {
    if (g.runnable.empty()) return deadlock();
    const int id = g.runnable.front();
    g.runnable.pop_front();
    g.current = id;
    threadIdx = g.fibers[id].idx;
    ringlet_emu_switch(&g.scheduler_sp, g.fibers[id].sp);
    stopped(id);
  }
}

void on_segv(int sig, siginfo_t* info, void* context) {
  if (!g.in_kernel || g.current < 0) {
    sigaction(SIGSEGV, &g.previous_segv, nullptr);  // not ours: the fault recurs under the previous handler
    return;
  }
  const uintptr_t at = reinterpret_cast<uintptr_t>(info->si_addr);
  uintptr_t base = 0;
  size_t bytes = 0;
  char what[256];
  if (nearest_buffer(at, &base, &bytes) && at >= base + bytes && at - (base + bytes) < (1u << 20))
    std::snprintf(what, sizeof what, "%zu bytes past the end of the device buffer of %zu bytes at %#zx",
                  (size_t)(at - (base + bytes)), bytes, (size_t)base);
  else
    std::snprintf(what, sizeof what, "not inside any device buffer (or a thread's stack overflowed)");
  const std::string where = std::string("kernel ") + g.kernel + ", block " + coords(blockIdx) + ", thread " +
                            coords(g.fibers[g.current].idx);
  char message[768];
  const int n = std::snprintf(message, sizeof message, "ringlet CUDA emulator: memory fault in %s: address %#zx is %s\n",
                              where.c_str(), (size_t)at, what);
  if (write(STDERR_FILENO, message, n > 0 ? (size_t)n : 0) < 0) {
  }
  signal(SIGSEGV, SIG_DFL);  // the fault recurs and ends the process
  (void)sig;
  (void)context;
}

}  // namespace

uint64_t warp_exchange(unsigned mask, uint64_t bits, Shuffle kind, int arg, int width, std::source_location where) {
  Fiber& f = g.fibers[g.current];
  f.state = State::warp_barrier;
  f.mask = mask;
  f.bits = bits;
  f.kind = kind;
  f.arg = arg;
  f.width = width;
  f.where = where;
  yield(f);
  return f.bits;
}

void warp_collective(const void* mine, const void* (&all)[32], std::source_location where) {
  g.fibers[g.current].deposit = mine;
  warp_exchange(~0u, 0, Shuffle::none, 0, warpSize, where);
  // Every lane has arrived; none deposits again before the operation's closing barrier.
  const unsigned warp = (unsigned)g.current / 32;
  for (unsigned lane = 0; lane < 32; lane++) all[lane] = g.fibers[32 * warp + lane].deposit;
}

void warp_misuse(const std::string& what, std::source_location where) {
  misuse(g.current, what + " at " + site(where));
}

void launch_blocks(const char* name, dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      threads > MAX_THREADS || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u ||
      grid.y > 65535 || grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration, (std::string("kernel ") + name + ": grid " + coords({grid.x, grid.y, grid.z}) +
                                         ", block " + coords({block.x, block.y, block.z}))
                                            .c_str());
    return;
  }
  if (shared_bytes > 0) {
    fail(cudaErrorInvalidValue, "dynamic shared memory is not emulated");
    return;
  }
  if (g.in_kernel) {
    fail(cudaErrorLaunchFailure, "a launch from inside a kernel");
    return;
  }
  static const uint64_t seed = [] {
    const char* s = std::getenv("RINGLET_CUDA_EMU_SEED");
    return s ? std::strtoull(s, nullptr, 10) : 1ull;
  }();
  if (g.rng == 0 && seed != 0) g.rng = seed;
  if (g.fibers.size() < threads) g.fibers.resize(threads);
  g.warps.resize((threads + 31) / 32);
  g.threads = (unsigned)threads;
  g.body = &body;
  g.kernel = name;
  g.error.clear();
  blockDim = block;
  gridDim = grid;

  const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
  std::vector<uint32_t> order;
  if (g.rng != 0 && blocks <= (1u << 24)) {
    order.resize(blocks);
    for (uint32_t b = 0; b < blocks; b++) order[b] = b;
    for (size_t i = blocks; i > 1; i--) std::swap(order[i - 1], order[next_random() % i]);
  }
  struct sigaction action {};
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &g.previous_segv);
  g.in_kernel = true;
  for (unsigned long long i = 0; i < blocks && g.error.empty(); i++) {
    const unsigned long long b = order.empty() ? i : order[i];
    blockIdx = uint3{(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y), (unsigned)(b / ((unsigned long long)grid.x * grid.y))};
    run_block();
  }
  g.in_kernel = false;
  g.current = -1;
  sigaction(SIGSEGV, &g.previous_segv, nullptr);
  if (!g.error.empty()) {
    std::fprintf(stderr, "ringlet CUDA emulator: %s\n", g.error.c_str());
    fail(cudaErrorLaunchFailure, g.error.c_str());
  }
}

}  // namespace ringlet_emu

void __syncthreads(std::source_location where) {
  ringlet_emu::Fiber& f = ringlet_emu::g.fibers[ringlet_emu::g.current];
  f.state = ringlet_emu::State::block_barrier;
  f.where = where;
  ringlet_emu::yield(f);
}
