// Ringlet's native kernels as a Node-API addon: OpenBLAS sgemm and the fused training kernels
// (kernels.inc). Every entry point takes typed arrays and sizes, checks each array is long enough for
// the sizes (a bad call throws a RangeError rather than touching memory it does not own), and writes
// into output arrays the caller allocated (the wasm heap or plain Float32Arrays).
#include <node_api.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernels.h"

// OpenBLAS extensions; declared here so any cblas.h works.
extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
char* openblas_get_config(void);
}

static const KernelTable* g_kernels = nullptr;

namespace {

struct ArgError {
  std::string message;
  bool range;
};

class Args {
 public:
  Args(napi_env env, napi_callback_info info, size_t expected) : env_(env), argc_(16) {
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr);
    if (argc_ < expected) throw ArgError{"expected " + std::to_string(expected) + " arguments", false};
  }
  // Argument i as a typed array: its element type, its length in elements and its data.
  void* typed(size_t i, const char* what, napi_typedarray_type* type, size_t* length) {
    bool is_ta = false;
    napi_is_typedarray(env_, argv_[i], &is_ta);
    if (!is_ta) throw ArgError{std::string(what) + " must be a typed array", false};
    void* data;
    napi_get_typedarray_info(env_, argv_[i], type, length, &data, nullptr, nullptr);
    return data;
  }
  template <typename T>
  T* array(size_t i, size_t need, napi_typedarray_type want, const char* what) {
    napi_typedarray_type type;
    size_t length;
    void* data = typed(i, what, &type, &length);
    if (type != want)
      throw ArgError{std::string(what) + (want == napi_float32_array ? " must be a Float32Array" : " must be an Int32Array"),
                     false};
    if (length < need)
      throw ArgError{std::string(what) + " has " + std::to_string(length) + " elements, needs " + std::to_string(need),
                     true};
    return static_cast<T*>(data);
  }
  float* f32(size_t i, size_t need, const char* what) { return array<float>(i, need, napi_float32_array, what); }
  // The bytes of any typed array (a Float32Array, or a Uint8Array at any offset), at least `need` of them.
  const unsigned char* bytes(size_t i, size_t need, const char* what) {
    napi_typedarray_type type;
    size_t length;
    void* data = typed(i, what, &type, &length);
    const size_t size = type == napi_float32_array ? 4 : type == napi_uint8_array ? 1 : 0;
    if (size == 0) throw ArgError{std::string(what) + " must be a Float32Array or a Uint8Array", false};
    if (length * size < need)
      throw ArgError{std::string(what) + " has " + std::to_string(length * size) + " bytes, needs " + std::to_string(need),
                     true};
    return static_cast<const unsigned char*>(data);
  }
  int32_t* i32(size_t i, size_t need, const char* what) { return array<int32_t>(i, need, napi_int32_array, what); }
  double num(size_t i, const char* what) {
    double v;
    if (napi_get_value_double(env_, argv_[i], &v) != napi_ok) throw ArgError{std::string(what) + " must be a number", false};
    return v;
  }
  long dim(size_t i, const char* what) {
    double v = num(i, what);
    if (!(v >= 0 && v <= 1e12) || v != std::floor(v))
      throw ArgError{std::string(what) + " must be a non-negative integer", true};
    return static_cast<long>(v);
  }
  bool flag(size_t i) {
    bool b = false;
    napi_get_value_bool(env_, argv_[i], &b);
    return b;
  }

 private:
  napi_env env_;
  size_t argc_;
  napi_value argv_[16];
};

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

template <typename F>
napi_value guard(napi_env env, F&& body) {
  try {
    return body();
  } catch (const ArgError& e) {
    if (e.range)
      napi_throw_range_error(env, nullptr, e.message.c_str());
    else
      napi_throw_type_error(env, nullptr, e.message.c_str());
    return nullptr;
  }
}

napi_value str(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &v);
  return v;
}

// sgemm(a, b, c, batch, m, n, k, transA, transB, strideA, strideB): c[i] = op(a[i])·op(b[i]) for each
// batch i, a[i] at i·strideA (0 broadcasts one matrix), c dense [batch, m, n].
napi_value Sgemm(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 11);
    const long batch = a.dim(3, "batch"), m = a.dim(4, "m"), n = a.dim(5, "n"), k = a.dim(6, "k");
    const bool ta = a.flag(7), tb = a.flag(8);
    const long sa = a.dim(9, "strideA"), sb = a.dim(10, "strideB");
    const size_t last = batch > 0 ? batch - 1 : 0;
    const float* A = a.f32(0, last * sa + m * k, "a");
    const float* B = a.f32(1, last * sb + k * n, "b");
    float* C = a.f32(2, batch * m * n, "c");
    if (m == 0 || n == 0) return undefined(env);
    if (k == 0) {
      std::memset(C, 0, sizeof(float) * batch * m * n);
      return undefined(env);
    }
    for (long i = 0; i < batch; i++)
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                  A + i * sa, ta ? m : k, B + i * sb, tb ? k : n, 0.0f, C + i * m * n, n);
    return undefined(env);
  });
}

// sgemv(a, x, y, m, n, trans): y = a·x, or aᵀ·x with trans, for a row-major a [m, n]. One row times a
// matrix is a product sgemm runs 2-4× slower than sgemv (it packs the whole matrix for one row), and it is
// what each generated token does.
napi_value Sgemv(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    const long m = a.dim(3, "m"), n = a.dim(4, "n");
    const bool trans = a.flag(5);
    const float* A = a.f32(0, m * n, "a");
    const float* x = a.f32(1, trans ? m : n, "x");
    float* y = a.f32(2, trans ? n : m, "y");
    if (m == 0 || n == 0) {
      std::memset(y, 0, sizeof(float) * (trans ? n : m));
      return undefined(env);
    }
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, m, n, 1.0f, A, n, x, 1, 0.0f, y, 1);
    return undefined(env);
  });
}

napi_value RmsnormFwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    const long rows = a.dim(4, "rows"), d = a.dim(5, "d");
    g_kernels->rmsnorm_fwd(a.f32(0, rows * d, "x"), a.f32(1, d, "g"), a.f32(2, rows * d, "y"), a.f32(3, rows, "rstd"),
                           rows, d, (float)a.num(6, "eps"));
    return undefined(env);
  });
}

napi_value RmsnormBwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 8);
    const long rows = a.dim(6, "rows"), d = a.dim(7, "d");
    g_kernels->rmsnorm_bwd(a.f32(0, rows * d, "x"), a.f32(1, d, "g"), a.f32(2, rows, "rstd"), a.f32(3, rows * d, "dy"),
                           a.f32(4, rows * d, "dx"), a.f32(5, d, "dg"), rows, d);
    return undefined(env);
  });
}

napi_value SwigluFwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    const long n = a.dim(3, "n");
    g_kernels->swiglu_fwd(a.f32(0, n, "a"), a.f32(1, n, "b"), a.f32(2, n, "y"), n);
    return undefined(env);
  });
}

napi_value SwigluBwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    const long n = a.dim(5, "n");
    g_kernels->swiglu_bwd(a.f32(0, n, "a"), a.f32(1, n, "b"), a.f32(2, n, "dy"), a.f32(3, n, "da"), a.f32(4, n, "db"), n);
    return undefined(env);
  });
}

// rope(x, y, cos, sin, rows, T, heads, hd, sign)
napi_value Rope(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 9);
    const long rows = a.dim(4, "rows"), T = a.dim(5, "T"), heads = a.dim(6, "heads"), hd = a.dim(7, "hd");
    if (T == 0 || hd % 2 != 0) throw ArgError{"rope: T must be positive and hd even", true};
    const long n = rows * heads * hd;
    g_kernels->rope(a.f32(0, n, "x"), a.f32(1, n, "y"), a.f32(2, T * hd / 2, "cos"), a.f32(3, T * hd / 2, "sin"), rows,
                    T, heads, hd, (float)a.num(8, "sign"));
    return undefined(env);
  });
}

void check_attention_dims(long H, long Hkv, long hd) {
  if (Hkv == 0 || H % Hkv != 0) throw ArgError{"attention: heads must be a multiple of kv heads", true};
  if (hd == 0 || hd > 512) throw ArgError{"attention: head size must be 1..512", true};
}

// The attention kernels' scratch: attn_scratch_floats(T, hd) floats (kernels.h) from a 64-byte boundary,
// so their tiles start on cache lines and whole AVX-512 vectors.
class AttnScratch {
 public:
  AttnScratch(long T, long hd) : buf_(attn_scratch_floats(T, hd) + 16) {}
  float* data() {
    const auto at = reinterpret_cast<std::uintptr_t>(buf_.data());
    return reinterpret_cast<float*>((at + 63) & ~std::uintptr_t{63});
  }

 private:
  std::vector<float> buf_;
};

// attnFwd(q, k, v, o, lse, B, T, H, Hkv, hd)
napi_value AttnFwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 10);
    const long B = a.dim(5, "B"), T = a.dim(6, "T"), H = a.dim(7, "H"), Hkv = a.dim(8, "Hkv"), hd = a.dim(9, "hd");
    check_attention_dims(H, Hkv, hd);
    const long nq = B * T * H * hd, nk = B * T * Hkv * hd;
    const float *q = a.f32(0, nq, "q"), *k = a.f32(1, nk, "k"), *v = a.f32(2, nk, "v");
    float *o = a.f32(3, nq, "o"), *lse = a.f32(4, B * H * T, "lse");
    // After the length checks, which bound T (unless B is 0: then there is nothing to do).
    AttnScratch scratch(B > 0 ? T : 0, hd);
    g_kernels->attn_fwd(q, k, v, o, lse, B, T, H, Hkv, hd, scratch.data());
    return undefined(env);
  });
}

// attnBwd(q, k, v, o, lse, dout, dq, dk, dv, B, T, H, Hkv, hd)
napi_value AttnBwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 14);
    const long B = a.dim(9, "B"), T = a.dim(10, "T"), H = a.dim(11, "H"), Hkv = a.dim(12, "Hkv"), hd = a.dim(13, "hd");
    check_attention_dims(H, Hkv, hd);
    const long nq = B * T * H * hd, nk = B * T * Hkv * hd;
    const float *q = a.f32(0, nq, "q"), *k = a.f32(1, nk, "k"), *v = a.f32(2, nk, "v"), *o = a.f32(3, nq, "o");
    const float *lse = a.f32(4, B * H * T, "lse"), *dout = a.f32(5, nq, "dout");
    float *dq = a.f32(6, nq, "dq"), *dk = a.f32(7, nk, "dk"), *dv = a.f32(8, nk, "dv");
    AttnScratch scratch(B > 0 ? T : 0, hd);  // after the length checks, as in AttnFwd
    g_kernels->attn_bwd(q, k, v, o, lse, dout, dq, dk, dv, B, T, H, Hkv, hd, scratch.data());
    return undefined(env);
  });
}

// attnDecode(qkv, cos, sin, kCache, vCache, o, T, start, H, Hkv, hd, cap): generation's attention of T
// new positions over a key/value cache [Hkv, cap, hd], which it extends (kernels.inc attn_decode).
napi_value AttnDecode(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 12);
    const long T = a.dim(6, "T"), start = a.dim(7, "start"), H = a.dim(8, "H"), Hkv = a.dim(9, "Hkv");
    const long hd = a.dim(10, "hd"), cap = a.dim(11, "cap");
    check_attention_dims(H, Hkv, hd);
    if (hd % 2 != 0) throw ArgError{"attention: head size must be even for RoPE", true};
    if (start + T > cap)
      throw ArgError{"attention: positions up to " + std::to_string(start + T) + " do not fit a cache of " +
                         std::to_string(cap),
                     true};
    const float* qkv = a.f32(0, T * (H + 2 * Hkv) * hd, "qkv");
    const float *cos = a.f32(1, (start + T) * hd / 2, "cos"), *sin = a.f32(2, (start + T) * hd / 2, "sin");
    float *kc = a.f32(3, Hkv * cap * hd, "kCache"), *vc = a.f32(4, Hkv * cap * hd, "vCache");
    float* o = a.f32(5, T * H * hd, "o");
    std::vector<float> scratch(hd + start + T);
    g_kernels->attn_decode(qkv, cos, sin, kc, vc, o, T, start, H, Hkv, hd, cap, scratch.data());
    return undefined(env);
  });
}

void check_targets(const int32_t* t, long rows, long V) {
  for (long r = 0; r < rows; r++)
    if (t[r] < 0 || t[r] >= V)
      throw ArgError{"cross-entropy: target " + std::to_string(t[r]) + " at row " + std::to_string(r) +
                         " is outside the vocabulary [0, " + std::to_string(V) + ")",
                     true};
}

// xentFwd(logits, targets, loss, lse, rows, V)
napi_value XentFwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    const long rows = a.dim(4, "rows"), V = a.dim(5, "V");
    const int32_t* t = a.i32(1, rows, "targets");
    check_targets(t, rows, V);
    g_kernels->xent_fwd(a.f32(0, rows * V, "logits"), t, a.f32(2, rows, "loss"), a.f32(3, rows, "lse"), rows, V);
    return undefined(env);
  });
}

// linearXent(h, w, targets, loss, dh, dw, rows, d, V, withGrad): the output projection and the softmax
// cross-entropy in one pass over chunks of rows, so the [rows, V] logits never exist whole: per chunk,
// logits = h·wᵀ, the loss and log-sum-exp; with withGrad also, since the loss is the last operation and
// its gradient is known, dlogits = (softmax − onehot)/rows in place of the logits, dh = dlogits·w and
// dw += dlogitsᵀ·h (the mean loss's gradients; the caller scales them by the upstream gradient).
// Same FLOPs as the unfused forward and backward, no recomputation. Without withGrad, dh and dw are unused.
napi_value LinearXent(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 10);
    const long rows = a.dim(6, "rows"), d = a.dim(7, "d"), V = a.dim(8, "V");
    const bool with_grad = a.flag(9);
    const float* h = a.f32(0, rows * d, "h");
    const float* w = a.f32(1, V * d, "w");
    const int32_t* t = a.i32(2, rows, "targets");
    check_targets(t, rows, V);
    float* loss = a.f32(3, rows, "loss");
    float* dh = with_grad ? a.f32(4, rows * d, "dh") : nullptr;
    float* dw = with_grad ? a.f32(5, V * d, "dw") : nullptr;
    if (rows == 0 || V == 0) return undefined(env);
    // ~16 MB of logits per chunk: large enough for sgemm to run near its best, small next to the whole.
    const long chunk = std::max(1L, std::min(rows, (4L << 20) / V));
    std::vector<float> logits(chunk * V), lse(chunk), dloss(chunk, 1.0f / (float)rows);
    if (with_grad && d > 0) std::memset(dw, 0, sizeof(float) * V * d);
    for (long r0 = 0; r0 < rows; r0 += chunk) {
      const long n = std::min(chunk, rows - r0);
      if (d > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, V, d, 1.0f, h + r0 * d, d, w, d, 0.0f, logits.data(), V);
      else
        std::memset(logits.data(), 0, sizeof(float) * n * V);
      g_kernels->xent_fwd(logits.data(), t + r0, loss + r0, lse.data(), n, V);
      if (!with_grad || d == 0) continue;
      g_kernels->xent_bwd(logits.data(), t + r0, lse.data(), dloss.data(), logits.data(), n, V);  // in place
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, V, 1.0f, logits.data(), V, w, d, 0.0f, dh + r0 * d, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, d, n, 1.0f, logits.data(), V, h + r0 * d, d, 1.0f, dw, d);
    }
    return undefined(env);
  });
}

// xentBwd(logits, targets, lse, dloss, dlogits, rows, V)
napi_value XentBwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    const long rows = a.dim(5, "rows"), V = a.dim(6, "V");
    const int32_t* t = a.i32(1, rows, "targets");
    check_targets(t, rows, V);
    g_kernels->xent_bwd(a.f32(0, rows * V, "logits"), t, a.f32(2, rows, "lse"), a.f32(3, rows, "dloss"),
                        a.f32(4, rows * V, "dlogits"), rows, V);
    return undefined(env);
  });
}

// adamw(p, g, m, v, pOut, mOut, vOut, n, lr, beta1, beta2, eps, wd, c1, c2, gscale)
napi_value Adamw(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 16);
    const long n = a.dim(7, "n");
    g_kernels->adamw(a.f32(0, n, "p"), a.f32(1, n, "g"), a.f32(2, n, "m"), a.f32(3, n, "v"), a.f32(4, n, "pOut"),
                     a.f32(5, n, "mOut"), a.f32(6, n, "vOut"), n, (float)a.num(8, "lr"), (float)a.num(9, "beta1"),
                     (float)a.num(10, "beta2"), (float)a.num(11, "eps"), (float)a.num(12, "wd"), (float)a.num(13, "c1"),
                     (float)a.num(14, "c2"), (float)a.num(15, "gscale"));
    return undefined(env);
  });
}

napi_value AddInto(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    const long n = a.dim(2, "n");
    g_kernels->add_into(a.f32(0, n, "target"), a.bytes(1, 4 * n, "values"), n);
    return undefined(env);
  });
}

// fmaPeak(threads, seconds): each thread runs the FMA loop for about `seconds`; returns GFLOP/s per thread.
napi_value FmaPeak(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 2);
    const long threads = a.dim(0, "threads");
    const double seconds = a.num(1, "seconds");
    if (threads < 1 || threads > 1024) throw ArgError{"fmaPeak: threads must be 1..1024", true};
    if (!(seconds > 0 && seconds <= 60)) throw ArgError{"fmaPeak: seconds must be in (0, 60]", true};
    // Calibrate the iteration count on this thread, then run all threads at once.
    float sink;
    long iters = 1 << 16;
    double elapsed = 0;
    for (;;) {
      auto t0 = std::chrono::steady_clock::now();
      g_kernels->fma_loop(iters, &sink);
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (elapsed > 0.05) break;
      iters *= 4;
    }
    const long run_iters = std::max(1L, (long)(iters * seconds / elapsed));
    std::vector<double> gflops(threads);
    std::vector<float> sinks(threads);
    std::vector<std::thread> pool;
    for (long t = 0; t < threads; t++)
      pool.emplace_back([&, t] {
        auto t0 = std::chrono::steady_clock::now();
        double flops = g_kernels->fma_loop(run_iters, &sinks[t]);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        gflops[t] = flops / s / 1e9;
      });
    for (auto& th : pool) th.join();
    napi_value arr;
    napi_create_array_with_length(env, threads, &arr);
    for (long t = 0; t < threads; t++) {
      napi_value v;
      napi_create_double(env, gflops[t], &v);
      napi_set_element(env, arr, t, v);
    }
    return arr;
  });
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "simd", str(env, g_kernels->name + std::strlen("ringlet_")));
  napi_set_named_property(env, obj, "blasCore", str(env, openblas_get_corename()));
  napi_set_named_property(env, obj, "blasConfig", str(env, openblas_get_config()));
  napi_value threads;
  napi_create_int32(env, openblas_get_num_threads(), &threads);
  napi_set_named_property(env, obj, "blasThreads", threads);
  return obj;
}

// setSimd(name): switches the kernel table (tests compare every instruction set); false if unsupported.
napi_value SetSimd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char name[32] = {0};
  size_t len = 0;
  bool ok = false;
  if (argc == 1 && napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) == napi_ok) {
    const KernelTable* t = kernels_for(name);
    if (t) {
      g_kernels = t;
      ok = true;
    }
  }
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

}  // namespace

NAPI_MODULE_INIT() {
  // One BLAS thread: Ringlet runs one single-threaded worker per core.
  openblas_set_num_threads(1);
  if (g_kernels == nullptr) {
    const char* want = std::getenv("RINGLET_SIMD");
    g_kernels = want && *want ? kernels_for(want) : nullptr;
    if (!g_kernels) g_kernels = best_kernels();
  }
  const napi_property_descriptor props[] = {
      {"sgemm", nullptr, Sgemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sgemv", nullptr, Sgemv, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsnormFwd", nullptr, RmsnormFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsnormBwd", nullptr, RmsnormBwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"swigluFwd", nullptr, SwigluFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"swigluBwd", nullptr, SwigluBwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rope", nullptr, Rope, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attnFwd", nullptr, AttnFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attnBwd", nullptr, AttnBwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attnDecode", nullptr, AttnDecode, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"xentFwd", nullptr, XentFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"xentBwd", nullptr, XentBwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"linearXent", nullptr, LinearXent, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamw", nullptr, Adamw, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"addInto", nullptr, AddInto, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"fmaPeak", nullptr, FmaPeak, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setSimd", nullptr, SetSimd, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
