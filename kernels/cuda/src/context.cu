// The device context: opening the device, memory, transfers, synchronisation and the launch record.
#include <cstdlib>
#include <cstring>
#include <string>

#include "context.h"

namespace ringlet {

namespace {

Context g_ctx;
bool g_open = false;

// Uploads up to this many bytes travel as a kernel's parameters (4 KiB is the portable limit, less the
// other arguments): the host never waits for them, while a copy through the one pinned staging buffer
// must wait until the previous copy from it has run. TensorFlow.js uploads many scalars mid-step.
constexpr int SMALL_UPLOAD_WORDS = 960;
struct SmallUpload {
  uint32_t words[SMALL_UPLOAD_WORDS];
};

__global__ void upload_words(SmallUpload data, uint32_t* dst, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = data.words[i];
}

// cuBLAS's workspace; NVIDIA recommends 32 MiB on Hopper.
constexpr size_t CUBLAS_WORKSPACE_BYTES = 32u << 20;

}  // namespace

// A failed call also leaves its error as the runtime's last error, which the next launch's cudaGetLastError
// would report as that kernel's failure: it is taken here, with the Failure that reports it.
void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  throw Failure(std::string(what) + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
}

Context& ctx() {
  if (!g_open) throw Failure("CUDA device not open");
  return g_ctx;
}

Context& open_context(const std::vector<std::string>& cublas_dirs) {
  g_ctx.open(cublas_dirs);
  return g_ctx;
}

void Context::open(const std::vector<std::string>& cublas_dirs) {
  if (g_open) return;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    throw Failure(std::string("no CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")");
  if (count == 0) throw Failure("no CUDA device (cudaGetDeviceCount found none)");
  cublas = &load_cublas(cublas_dirs);

  check(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  name = prop.name;
  compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  total_memory = prop.totalGlobalMem;
  sm_count = prop.multiProcessorCount;

  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cudaDeviceGetDefaultMemPool(&pool_, 0), "cudaDeviceGetDefaultMemPool");
  // Freed memory stays in the pool instead of going back to the driver at each synchronisation.
  uint64_t threshold = UINT64_MAX;
  check(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold), "cudaMemPoolSetAttribute");
  check(cudaEventCreateWithFlags(&staging_free_, cudaEventDisableTiming), "cudaEventCreate");
  check(cudaMalloc(&fault, sizeof(Fault)), "cudaMalloc(fault record)");
  // On our stream: a plain cudaMemset goes to the legacy stream, which a non-blocking stream does not wait for.
  check(cudaMemsetAsync(fault, 0, sizeof(Fault), stream), "cudaMemsetAsync(fault record)");
  check(cudaMallocHost(&fault_host_, sizeof(Fault)), "cudaMallocHost(fault record)");
  check(cudaMalloc(&workspace_, CUBLAS_WORKSPACE_BYTES), "cudaMalloc(cuBLAS workspace)");

  check_cublas(cublas->create(&blas), "cublasCreate");
  check_cublas(cublas->set_stream(blas, stream), "cublasSetStream");
  check_cublas(cublas->set_workspace(blas, workspace_, CUBLAS_WORKSPACE_BYTES), "cublasSetWorkspace");
  int version = 0;
  check_cublas(cublas->get_version(blas, &version), "cublasGetVersion");
  cublas_version = cublas->path + " (version " + std::to_string(version) + ")";

  const char* each = std::getenv("RINGLET_CUDA_SYNC");
  sync_each_ = each && std::strcmp(each, "1") == 0;
  g_open = true;
}

// ---- Memory.

void* Context::alloc(size_t bytes) {
  if (bytes == 0) throw Failure("alloc: 0 bytes");
  void* p = nullptr;
  const cudaError_t e = cudaMallocAsync(&p, bytes, stream);
  if (e != cudaSuccess) {
    cudaGetLastError();  // out of memory is not sticky: the next launch must not report it (see check)
    throw Failure("alloc of " + std::to_string(bytes) + " bytes (" + std::to_string(in_use) +
                  " in use): " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
  }
  buffers_[reinterpret_cast<uintptr_t>(p)] = bytes;
  in_use += bytes;
  if (in_use > peak) peak = in_use;
  return p;
}

void Context::free(void* p) {
  const auto it = buffers_.find(reinterpret_cast<uintptr_t>(p));
  if (it == buffers_.end()) throw Failure("free: not a buffer of this device");
  check(cudaFreeAsync(p, stream), "cudaFreeAsync");
  in_use -= it->second;
  buffers_.erase(it);
}

void Context::need(const void* p, size_t bytes, const char* what) const {
  if (bytes == 0) return;
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  auto it = buffers_.upper_bound(at);
  if (it == buffers_.begin()) throw Failure(std::string(what) + ": not in a buffer of this device");
  --it;
  const uintptr_t end = it->first + it->second;
  if (at >= end) throw Failure(std::string(what) + ": not in a buffer of this device");
  if (bytes > end - at)
    throw Failure(std::string(what) + ": needs " + std::to_string(bytes) + " bytes, its buffer has " +
                  std::to_string(end - at) + " from there");
}

size_t Context::reserved() const {
  uint64_t bytes = 0;
  check(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &bytes), "cudaMemPoolGetAttribute");
  return bytes;
}

// ---- Transfers.

void Context::stage(size_t bytes) {
  if (bytes <= staging_bytes_) return;
  check(cudaEventSynchronize(staging_free_), "waiting for the staging buffer");
  if (staging_) check(cudaFreeHost(staging_), "cudaFreeHost");
  staging_ = nullptr;
  staging_bytes_ = 0;
  size_t want = 1u << 20;
  while (want < bytes) want *= 2;
  check(cudaMallocHost(&staging_, want), "cudaMallocHost(staging)");
  staging_bytes_ = want;
}

void Context::upload(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (bytes <= sizeof(SmallUpload) && bytes % 4 == 0 && reinterpret_cast<uintptr_t>(dst) % 4 == 0) {
    SmallUpload data;
    std::memcpy(data.words, src, bytes);
    const int n = (int)(bytes / 4);
    launch("upload", dim3((n + 255) / 256), dim3(256), 0, upload_words, data, static_cast<uint32_t*>(dst), n);
    return;
  }
  stage(bytes);
  // The previous upload from the staging buffer must have been copied out before it is overwritten.
  check(cudaEventSynchronize(staging_free_), "waiting for the staging buffer");
  std::memcpy(staging_, src, bytes);
  check(cudaMemcpyAsync(dst, staging_, bytes, cudaMemcpyHostToDevice, stream), "upload (cudaMemcpyAsync)");
  check(cudaEventRecord(staging_free_, stream), "cudaEventRecord");
}

void Context::download(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) {
    sync();
    return;
  }
  // Stream order puts this copy after any upload still reading the staging buffer.
  stage(bytes);
  check(cudaMemcpyAsync(staging_, src, bytes, cudaMemcpyDeviceToHost, stream), "download (cudaMemcpyAsync)");
  sync();
  std::memcpy(dst, staging_, bytes);
}

void Context::sync() {
  check(cudaMemcpyAsync(fault_host_, fault, sizeof(Fault), cudaMemcpyDeviceToHost, stream),
        "reading the fault record");
  const cudaError_t e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) {
    std::string names;
    for (const char* n : since_sync_) names += (names.empty() ? "" : ", ") + std::string(n);
    throw Failure(std::string("CUDA error in a kernel since the last sync (") +
                  (names.empty() ? "none launched" : names) + "; RINGLET_CUDA_SYNC=1 waits after each launch " +
                  "to name the one): " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
  }
  since_sync_.clear();
  const Fault f = *fault_host_;
  if (f.kind == FAULT_NONE) return;
  check(cudaMemsetAsync(fault, 0, sizeof(Fault), stream), "clearing the fault record");
  check(cudaStreamSynchronize(stream), "clearing the fault record");
  const std::string where = std::to_string(f.position), value = std::to_string(f.value),
                    bound = std::to_string(f.bound);
  if (f.kind == FAULT_GATHER_INDEX)
    throw Failure("gather: index " + value + " at position " + where + " is outside [0, " + bound +
                  "); its row was written as zeros");
  throw Failure("linearXent: target " + value + " at row " + where + " is outside the vocabulary [0, " + bound +
                "); its loss was written as NaN");
}

// ---- Launches.

void Context::begin(const char* name) {
  if (!profiling) return;
  if (spare_events_.empty()) {
    cudaEvent_t a, b;
    check(cudaEventCreate(&a), "cudaEventCreate");
    check(cudaEventCreate(&b), "cudaEventCreate");
    spare_events_.push_back({a, b});
  }
  pending_start_ = spare_events_.back().first;
  check(cudaEventRecord(pending_start_, stream), name);
}

void Context::end(const char* name, cudaError_t launch_error) {
  check(launch_error, name);
  launches_++;
  bool seen = false;
  for (const char* n : since_sync_) seen = seen || std::strcmp(n, name) == 0;
  if (!seen && since_sync_.size() < 16) since_sync_.push_back(name);
  if (profiling && pending_start_) {
    const auto pair = spare_events_.back();
    spare_events_.pop_back();
    check(cudaEventRecord(pair.second, stream), name);
    timed_.push_back(pair);
    pending_start_ = nullptr;
  }
  if (sync_each_) {
    const cudaError_t e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) check(e, (std::string("kernel ") + name).c_str());
  }
}

std::pair<double, long> Context::take_profile() {
  sync();
  double ms = 0;
  for (const auto& pair : timed_) {
    float t = 0;
    check(cudaEventElapsedTime(&t, pair.first, pair.second), "cudaEventElapsedTime");
    ms += t;
    spare_events_.push_back(pair);
  }
  timed_.clear();
  const long launches = launches_;
  launches_ = 0;
  return {ms, launches};
}

}  // namespace ringlet
