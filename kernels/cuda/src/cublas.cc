// cuBLAS by dlopen, from the directories kernels/cuda/addon.ts searches (cublasSearchDirs): the GPU
// machines carry it in the Python environment's NVIDIA wheels, not on the loader's path, and the machines
// that build the addon have no cuBLAS at all.
#include <dlfcn.h>

#include <string>
#include <vector>

#include "context.h"

namespace ringlet {

namespace {

Cublas g_cublas;

const char* status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "an unknown cuBLAS status";
}

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

template <typename F>
bool symbol(void* lib, const char* name, F* out, std::string* why) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (!*out) *why = std::string("no symbol ") + name;
  return *out != nullptr;
}

// Loads both libraries from `dir` into g_cublas, or says why not.
bool try_dir(const std::string& dir, std::string* why) {
  const std::string lt_path = dir + "/libcublasLt.so.13", path = dir + "/libcublas.so.13";
  void* lt = dlopen(lt_path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!lt) {
    *why = dl_error();
    return false;
  }
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    *why = dl_error();
    dlclose(lt);
    return false;
  }
  Cublas c;
  c.lt = lt;
  c.lib = lib;
  c.path = path;
  if (symbol(lib, "cublasCreate_v2", &c.create, why) && symbol(lib, "cublasDestroy_v2", &c.destroy, why) &&
      symbol(lib, "cublasSetStream_v2", &c.set_stream, why) &&
      symbol(lib, "cublasSetWorkspace_v2", &c.set_workspace, why) &&
      symbol(lib, "cublasGetVersion_v2", &c.get_version, why) &&
      symbol(lib, "cublasGemmStridedBatchedEx", &c.gemm, why)) {
    g_cublas = c;
    return true;
  }
  dlclose(lib);
  dlclose(lt);
  return false;
}

}  // namespace

const Cublas& load_cublas(const std::vector<std::string>& dirs) {
  if (g_cublas.lib) return g_cublas;
  std::string tried;
  for (const std::string& dir : dirs) {
    std::string why;
    if (try_dir(dir, &why)) return g_cublas;
    tried += (tried.empty() ? "" : "; ") + dir + ": " + why;
  }
  throw Failure("cuBLAS not found (libcublasLt.so.13 and libcublas.so.13; " +
                (tried.empty() ? std::string("no directories to search") : "tried " + tried) +
                "; RINGLET_CUBLAS_DIR names the directory that has them)");
}

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Failure(std::string(what) + ": " + status_name(s));
}

}  // namespace ringlet
