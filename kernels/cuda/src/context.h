// The one CUDA device this process computes on (CUDA_VISIBLE_DEVICES picks it): its stream, cuBLAS,
// the stream-ordered memory pool, the record of launches that names the kernel behind an asynchronous
// error, and the profile. Every kernel file launches through Context::launch, so each launch is checked.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cublas_api.h"

namespace ringlet {

// An error for JavaScript: the N-API layer throws it as an Error with this message.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws a Failure "what: <CUDA's message> (<error name>)" unless e is cudaSuccess.
void check(cudaError_t e, const char* what);

enum class DType { f32, i32, boolean };

// The first bad value a kernel met in its data (a gather index or a cross-entropy target out of range).
// The kernel writes zeros (or NaN) where the value was used and records it here, in device memory;
// sync() reads it and throws, since a kernel cannot throw.
enum FaultKind { FAULT_NONE = 0, FAULT_GATHER_INDEX = 1, FAULT_XENT_TARGET = 2 };
struct Fault {
  int kind;
  int unused;
  long long position;  // the index's position in the indices, or the target's row
  long long value;
  long long bound;  // valid values are [0, bound)
};

#if defined(__CUDACC__) || defined(RINGLET_CUDA_EMULATED)
// Records the first fault; later ones are dropped (the one reported is enough to find the bug).
__device__ inline void report_fault(Fault* f, int kind, long long position, long long value, long long bound) {
  if (atomicCAS(&f->kind, 0, kind) == 0) {
    f->position = position;
    f->value = value;
    f->bound = bound;
  }
}
#endif

struct Cublas {
  void* lt = nullptr;  // libcublasLt.so.13, loaded first with RTLD_GLOBAL: libcublas needs its symbols
  void* lib = nullptr;
  std::string path;
  cublasCreate_v2_t create = nullptr;
  cublasDestroy_v2_t destroy = nullptr;
  cublasSetStream_v2_t set_stream = nullptr;
  cublasSetWorkspace_v2_t set_workspace = nullptr;
  cublasGetVersion_v2_t get_version = nullptr;
  cublasGemmStridedBatchedEx_t gemm = nullptr;
};

// Loads cuBLAS from the first of `dirs` that has it (once per process); throws "cuBLAS not found: ..."
// naming every directory tried and why each failed. Returns the library's path.
const Cublas& load_cublas(const std::vector<std::string>& dirs);
// Throws a Failure "what: cuBLAS status NAME" unless s is CUBLAS_STATUS_SUCCESS.
void check_cublas(cublasStatus_t s, const char* what);

class Context {
 public:
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  const Cublas* cublas = nullptr;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  Fault* fault = nullptr;  // device memory
  int sm_count = 0;
  std::string name, compute_capability, cublas_version;
  size_t total_memory = 0;

  // ---- Memory: buffers from the device's stream-ordered pool, tracked so that every kernel's
  // arguments can be checked against the buffers they point into.
  void* alloc(size_t bytes);
  void free(void* p);
  // Throws unless [p, p + bytes) lies inside one live buffer (`what` names the argument).
  void need(const void* p, size_t bytes, const char* what) const;
  size_t in_use = 0, peak = 0;
  size_t reserved() const;

  void upload(void* dst, const void* src, size_t bytes);
  void download(void* dst, const void* src, size_t bytes);
  void sync();

  // ---- Launches: every kernel (and cuBLAS call) goes through begin/end.
  void begin(const char* name);
  void end(const char* name, cudaError_t launch_error);
  bool profiling = false;
  std::pair<double, long> take_profile();  // kernel milliseconds and launches since the last take

#if defined(__CUDACC__) || defined(RINGLET_CUDA_EMULATED)
  template <typename... Params, typename... Args>
  void launch(const char* name, dim3 grid, dim3 block, size_t shared_bytes, void (*kernel)(Params...),
              Args... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
    begin(name);
#ifdef RINGLET_CUDA_EMULATED
    // The CPU emulator (kernels/cuda/emu) runs the launch before it returns.
    ringlet_emu::launch(name, grid, block, shared_bytes, kernel, static_cast<Params>(args)...);
#else
    kernel<<<grid, block, shared_bytes, stream>>>(static_cast<Params>(args)...);
#endif
    end(name, cudaGetLastError());
  }
#endif

  // Device scratch for one call, returned to the pool (stream-ordered) when it goes out of scope.
  class Scratch {
   public:
    Scratch(Context& c, size_t bytes) : c_(c), p_(bytes ? c.alloc(bytes) : nullptr) {}
    ~Scratch() {
      if (p_) c_.free(p_);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    template <typename T>
    T* as() const {
      return static_cast<T*>(p_);
    }

   private:
    Context& c_;
    void* p_;
  };

  void open(const std::vector<std::string>& cublas_dirs);

 private:
  std::map<uintptr_t, size_t> buffers_;  // base address -> bytes
  cudaMemPool_t pool_ = nullptr;
  // Pinned staging for uploads and downloads; `staging_free_` marks when the last upload from it has run.
  void* staging_ = nullptr;
  size_t staging_bytes_ = 0;
  cudaEvent_t staging_free_ = nullptr;
  void stage(size_t bytes);
  Fault* fault_host_ = nullptr;  // pinned, for sync() to read the fault record
  void* workspace_ = nullptr;    // cuBLAS's workspace, ours so that a CUDA graph may capture its calls
  // Kernels launched since the last sync, for the message of an asynchronous error.
  std::vector<const char*> since_sync_;
  long launches_ = 0;
  bool sync_each_ = false;  // RINGLET_CUDA_SYNC=1: wait after each launch, to name a failing kernel exactly
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> timed_, spare_events_;
  cudaEvent_t pending_start_ = nullptr;
};

// Opens the device (once per process: later calls return the same context). Throws "no CUDA device (...)"
// or "cuBLAS not found (...)".
Context& open_context(const std::vector<std::string>& cublas_dirs);
// The context, once open_context has succeeded; throws "CUDA device not open" before.
Context& ctx();

// Grid sizes for grid-stride loops over n items: enough blocks to fill the device, no more.
inline unsigned blocks_for(long long n, int threads) {
  const long long want = (n + threads - 1) / threads;
  return (unsigned)(want < 65536 ? want : 65536);
}

}  // namespace ringlet
