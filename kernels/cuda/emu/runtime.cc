// The emulated CUDA runtime (include/cuda_runtime.h) on host memory. Every operation completes when its
// call returns. Device memory is checked as far as the CPU's memory protection allows: each allocation gets
// pages of its own, ending at its last byte (rounded up to 16) against an inaccessible page, so a kernel
// that reads or writes past a buffer's end faults at once (simt.cc names the kernel and thread), and freed
// memory is unmapped, so a use after free faults too. New memory is filled with 0xff bytes (NaN as float32,
// -1 as int32): a kernel that reads what nobody wrote gets NaN, as it would get garbage on a GPU.
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cuda_runtime.h"

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point at;
  bool recorded = false;
  bool timing = true;
};
struct CUmemPoolHandle_st {
  uint64_t release_threshold = 0;
};

namespace ringlet_emu {

namespace {

struct Mapping {
  size_t bytes;       // as asked
  void* base;         // the mapping, guard pages included
  size_t map_bytes;
  bool from_pool;     // cudaMallocAsync (the pool's reserved memory counts it)
};

std::mutex g_mutex;  // cuBLAS's library checks pointers from the same process
std::map<uintptr_t, Mapping> g_device;
std::set<void*> g_pinned;
size_t g_pool_bytes = 0;
CUmemPoolHandle_st g_pool;

cudaError_t g_last = cudaSuccess;
cudaError_t g_detailed = cudaSuccess;
std::string g_detail, g_message;

size_t page_size() {
  static const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

cudaError_t device_alloc(void** p, size_t bytes, bool from_pool) {
  if (!p) return fail(cudaErrorInvalidValue, "a null pointer for the address");
  if (bytes == 0) {
    *p = nullptr;
    return cudaSuccess;
  }
  const size_t page = page_size(), used = (bytes + 15) / 16 * 16, data = (used + page - 1) / page * page;
  const size_t map_bytes = data + 2 * page;
  void* base = mmap(nullptr, map_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return fail(cudaErrorMemoryAllocation);
  char* first = static_cast<char*>(base) + page;
  if (mprotect(first, data, PROT_READ | PROT_WRITE) != 0) {
    munmap(base, map_bytes);
    return fail(cudaErrorMemoryAllocation);
  }
  char* at = first + data - used;
  std::memset(at, 0xff, used);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_device[reinterpret_cast<uintptr_t>(at)] = Mapping{bytes, base, map_bytes, from_pool};
  if (from_pool) g_pool_bytes += bytes;
  *p = at;
  return cudaSuccess;
}

cudaError_t device_free(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto it = g_device.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_device.end()) return fail(cudaErrorInvalidValue, "free of an address no allocation returned");
  if (it->second.from_pool) g_pool_bytes -= it->second.bytes;
  munmap(it->second.base, it->second.map_bytes);
  g_device.erase(it);
  return cudaSuccess;
}

}  // namespace

cudaError_t fail(cudaError_t error, const char* detail) {
  g_last = error;
  g_detailed = error;
  g_detail = detail ? detail : "";
  return error;
}

const void* device_buffer_of(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  auto it = g_device.upper_bound(at);
  if (it == g_device.begin()) return nullptr;
  --it;
  if (at < it->first || at + bytes > it->first + it->second.bytes) return nullptr;
  return reinterpret_cast<const void*>(it->first);
}

// For simt.cc's fault report: the allocation nearest below `p`, its size, or false.
bool nearest_buffer(uintptr_t p, uintptr_t* base, size_t* bytes) {
  auto it = g_device.upper_bound(p);
  if (it == g_device.begin()) return false;
  --it;
  *base = it->first;
  *bytes = it->second.bytes;
  return true;
}

}  // namespace ringlet_emu

using ringlet_emu::fail;

namespace {

// The machine has RINGLET_CUDA_EMU_DEVICES emulated GPUs (default 1), of which the process sees those
// CUDA_VISIBLE_DEVICES lists, as the CUDA runtime does (indices, up to the first that is not one): its device
// d is the physical device visible()[d]. With several, each is named with its physical index, so a test can
// tell which GPU a worker was pinned to.
int physical_devices() {
  const char* n = std::getenv("RINGLET_CUDA_EMU_DEVICES");
  const int count = n ? std::atoi(n) : 1;
  return count > 0 ? count : 0;
}

std::vector<int> visible() {
  const int physical = physical_devices();
  std::vector<int> out;
  const char* list = std::getenv("CUDA_VISIBLE_DEVICES");
  if (!list) {
    for (int i = 0; i < physical; i++) out.push_back(i);
    return out;
  }
  std::string rest(list);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string id = rest.substr(0, comma);
    char* end = nullptr;
    const long i = std::strtol(id.c_str(), &end, 10);
    if (id.empty() || *end != '\0' || i < 0 || i >= physical) break;
    out.push_back((int)i);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  return out;
}

bool valid_device(int device) { return device >= 0 && device < (int)visible().size(); }

}  // namespace

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = (int)visible().size();
  return *count > 0 ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int device) { return valid_device(device) ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::string name = "Ringlet CUDA emulator (CPU)";
  if (physical_devices() > 1) name += " #" + std::to_string(visible()[device]);
  std::strncpy(prop->name, name.c_str(), sizeof(prop->name) - 1);
  prop->totalGlobalMem = (size_t)sysconf(_SC_PHYS_PAGES) * ringlet_emu::page_size();
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (!stream) return fail(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (!pool) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  *pool = &ringlet_emu::g_pool;
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool != &ringlet_emu::g_pool || !value) return fail(cudaErrorInvalidValue);
  if (attr != cudaMemPoolAttrReleaseThreshold) return fail(cudaErrorInvalidValue, "the emulator sets only the release threshold");
  pool->release_threshold = *static_cast<uint64_t*>(value);
  return cudaSuccess;
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool != &ringlet_emu::g_pool || !value) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(ringlet_emu::g_mutex);
  switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: *static_cast<uint64_t*>(value) = pool->release_threshold; return cudaSuccess;
    case cudaMemPoolAttrReservedMemCurrent:
    case cudaMemPoolAttrUsedMemCurrent: *static_cast<uint64_t*>(value) = ringlet_emu::g_pool_bytes; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaMalloc(void** p, size_t bytes) { return ringlet_emu::device_alloc(p, bytes, false); }
cudaError_t cudaFree(void* p) { return ringlet_emu::device_free(p); }
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return ringlet_emu::device_alloc(p, bytes, true); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return ringlet_emu::device_free(p); }

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  if (!p) return fail(cudaErrorInvalidValue);
  *p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (!*p) return fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(ringlet_emu::g_mutex);
  ringlet_emu::g_pinned.insert(*p);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* p) {
  std::lock_guard<std::mutex> lock(ringlet_emu::g_mutex);
  if (!ringlet_emu::g_pinned.erase(p)) return fail(cudaErrorInvalidValue, "cudaFreeHost of an address cudaMallocHost did not return");
  std::free(p);
  return cudaSuccess;
}

// A copy's device side must lie inside one allocation, as the GPU's memory would fault otherwise.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_device && !ringlet_emu::device_buffer_of(dst, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: the destination is not inside one device allocation");
  if (src_device && !ringlet_emu::device_buffer_of(src, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: the source is not inside one device allocation");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (!ringlet_emu::device_buffer_of(p, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemset: not inside one device allocation");
  std::memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (!event) return fail(cudaErrorInvalidValue);
  *event = new CUevent_st;
  (*event)->timing = !(flags & cudaEventDisableTiming);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return fail(cudaErrorInvalidValue);
  if (!start->timing || !end->timing) return fail(cudaErrorInvalidResourceHandle, "an event without timing");
  if (!start->recorded || !end->recorded) return fail(cudaErrorNotReady, "an event never recorded");
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = ringlet_emu::g_last;
  ringlet_emu::g_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return ringlet_emu::g_last; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

// CUDA's message, and for the last error the emulator reported, what the emulator found.
const char* cudaGetErrorString(cudaError_t error) {
  const char* base = "unknown error";
  switch (error) {
    case cudaSuccess: base = "no error"; break;
    case cudaErrorInvalidValue: base = "invalid argument"; break;
    case cudaErrorMemoryAllocation: base = "out of memory"; break;
    case cudaErrorInvalidConfiguration: base = "invalid configuration argument"; break;
    case cudaErrorNoDevice: base = "no CUDA-capable device is detected"; break;
    case cudaErrorInvalidDevice: base = "invalid device ordinal"; break;
    case cudaErrorInvalidResourceHandle: base = "invalid resource handle"; break;
    case cudaErrorNotReady: base = "device not ready"; break;
    case cudaErrorLaunchFailure: base = "unspecified launch failure"; break;
  }
  if (error != ringlet_emu::g_detailed || ringlet_emu::g_detail.empty()) return base;
  ringlet_emu::g_message = std::string(base) + " [emulator: " + ringlet_emu::g_detail + "]";
  return ringlet_emu::g_message.c_str();
}
