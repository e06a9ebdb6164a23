// The CUDA device as a Node-API addon: one function per Device method (kernels/cuda/device.ts), loaded and
// wrapped by kernels/cuda/addon.ts. Device addresses travel as numbers. Before a kernel is enqueued, every
// buffer argument is checked to lie inside a live buffer for the extent the sizes imply, so a bad call
// throws here instead of corrupting device memory (after which the CUDA context is lost).
#include <node_api.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ops.h"

namespace ringlet {

namespace {

struct ArgError {
  std::string message;
};

// a·b·... in bytes of 4-byte elements, or a Failure when it overflows.
int64_t elems_bytes(std::initializer_list<int64_t> factors) {
  int64_t n = 4;
  for (int64_t f : factors)
    if (__builtin_mul_overflow(n, f, &n)) throw Failure("sizes overflow");
  return n;
}

class Args {
 public:
  Args(napi_env env, napi_callback_info info, size_t expected) : env_(env), argc_(16) {
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr);
    if (argc_ < expected) throw ArgError{"expected " + std::to_string(expected) + " arguments"};
  }
  double num(size_t i, const char* what) {
    double v;
    if (napi_get_value_double(env_, argv_[i], &v) != napi_ok) throw ArgError{std::string(what) + " must be a number"};
    return v;
  }
  // A size or count: an integer in [0, 2^40].
  int64_t dim(size_t i, const char* what) {
    const double v = num(i, what);
    if (!(v >= 0 && v <= 1099511627776.0) || v != std::floor(v))
      throw ArgError{std::string(what) + " must be a non-negative integer"};
    return (int64_t)v;
  }
  // A device address: a positive integer below 2^53 (0 only where allowed, for an unused output).
  void* ptr(size_t i, const char* what, bool allow_null = false) {
    const double v = num(i, what);
    if (!(v >= 0 && v < 9007199254740992.0) || v != std::floor(v) || (v == 0 && !allow_null))
      throw ArgError{std::string(what) + " must be a device address"};
    return reinterpret_cast<void*>((uintptr_t)v);
  }
  // JavaScript truthiness, so that 1 is true as in the TypeScript that computed the sizes from it.
  bool flag(size_t i) {
    napi_value v;
    bool b = false;
    if (napi_coerce_to_bool(env_, argv_[i], &v) == napi_ok) napi_get_value_bool(env_, v, &b);
    return b;
  }
  std::string str(size_t i, const char* what) {
    char buf[64];
    size_t len = 0;
    if (napi_get_value_string_utf8(env_, argv_[i], buf, sizeof buf, &len) != napi_ok)
      throw ArgError{std::string(what) + " must be a string"};
    return std::string(buf, len);
  }
  // An array of numbers.
  std::vector<double> numbers(size_t i, const char* what) {
    bool is_array = false;
    napi_is_array(env_, argv_[i], &is_array);
    if (!is_array) throw ArgError{std::string(what) + " must be an array of numbers"};
    uint32_t n = 0;
    napi_get_array_length(env_, argv_[i], &n);
    std::vector<double> out(n);
    for (uint32_t j = 0; j < n; j++) {
      napi_value e;
      napi_get_element(env_, argv_[i], j, &e);
      if (napi_get_value_double(env_, e, &out[j]) != napi_ok)
        throw ArgError{std::string(what) + " must be an array of numbers"};
    }
    return out;
  }
  std::vector<int64_t> dims(size_t i, const char* what) {
    std::vector<int64_t> out;
    for (double v : numbers(i, what)) {
      if (!(v >= 0 && v <= 1099511627776.0) || v != std::floor(v))
        throw ArgError{std::string(what) + " must hold non-negative integers"};
      out.push_back((int64_t)v);
    }
    return out;
  }
  // A Float32Array or Int32Array: its data and byte length.
  void* typed(size_t i, const char* what, size_t* bytes) {
    bool is_ta = false;
    napi_is_typedarray(env_, argv_[i], &is_ta);
    if (!is_ta) throw ArgError{std::string(what) + " must be a Float32Array or an Int32Array"};
    napi_typedarray_type type;
    size_t length;
    void* data;
    napi_get_typedarray_info(env_, argv_[i], &type, &length, &data, nullptr, nullptr);
    if (type != napi_float32_array && type != napi_int32_array)
      throw ArgError{std::string(what) + " must be a Float32Array or an Int32Array"};
    *bytes = length * 4;
    return data;
  }
  // A Float64Array of exactly `n` values.
  const double* f64(size_t i, size_t n, const char* what) {
    bool is_ta = false;
    napi_is_typedarray(env_, argv_[i], &is_ta);
    napi_typedarray_type type = napi_float32_array;
    size_t length = 0;
    void* data = nullptr;
    if (is_ta) napi_get_typedarray_info(env_, argv_[i], &type, &length, &data, nullptr, nullptr);
    if (!is_ta || type != napi_float64_array || length != n)
      throw ArgError{std::string(what) + " must be a Float64Array of " + std::to_string(n) + " values"};
    return static_cast<const double*>(data);
  }

 private:
  napi_env env_;
  size_t argc_;
  napi_value argv_[16];
};

template <typename E, size_t N>
E named(const std::string& name, const char* const (&names)[N], const char* what) {
  for (size_t i = 0; i < N; i++)
    if (name == names[i]) return static_cast<E>(i);
  throw ArgError{std::string("unknown ") + what + " '" + name + "'"};
}

DType dtype_of(const std::string& name) {
  if (name == "float32") return DType::f32;
  if (name == "int32") return DType::i32;
  if (name == "bool") return DType::boolean;
  throw ArgError{"unknown dtype '" + name + "'"};
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value number(napi_env env, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  return n;
}

napi_value string(napi_env env, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.c_str(), s.size(), &v);
  return v;
}

template <typename F>
napi_value guard(napi_env env, F&& body) {
  try {
    return body();
  } catch (const ArgError& e) {
    napi_throw_type_error(env, nullptr, e.message.c_str());
  } catch (const Failure& e) {
    napi_throw_error(env, nullptr, e.what());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
  }
  return nullptr;
}

// Checks [p, p + bytes) against the live buffers (see Context::need).
void need(const void* p, int64_t bytes, const char* what) { ctx().need(p, (size_t)bytes, what); }

// Elements a strided view reaches past its offset: 1 + Σ (extent − 1)·stride, or 0 when it is empty.
int64_t strided_extent(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0) return 0;
    last += (shape[d] - 1) * strides[d];
  }
  return last + 1;
}

void check_rank(const std::vector<int64_t>& shape, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (shape.size() > (size_t)MAX_RANK) throw ArgError{"rank must be at most " + std::to_string(MAX_RANK)};
  if (a.size() != shape.size() || b.size() != shape.size())
    throw ArgError{"strides must have one entry per dimension of the shape"};
}

// ---- Device and memory.

napi_value DeviceCount(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    napi_value obj;
    napi_create_object(env, &obj);
    napi_set_named_property(env, obj, "count", number(env, e == cudaSuccess ? count : 0));
    napi_set_named_property(
        env, obj, "error",
        string(env, e == cudaSuccess ? "" : cudaGetErrorString(e)));
    return obj;
  });
}

std::vector<std::string> strings(napi_env env, napi_value array) {
  uint32_t n = 0;
  napi_get_array_length(env, array, &n);
  std::vector<std::string> out;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, array, i, &e);
    char buf[4096];
    size_t len = 0;
    if (napi_get_value_string_utf8(env, e, buf, sizeof buf, &len) == napi_ok) out.emplace_back(buf, len);
  }
  return out;
}

// loadCublas(dirs): the path of the cuBLAS it loaded, or throws naming each directory tried.
napi_value LoadCublas(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    size_t argc = 1;
    napi_value argv[1];
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc < 1) throw ArgError{"expected the directories to search"};
    return string(env, load_cublas(strings(env, argv[0])).path);
  });
}

// open(cublasDirs): opens the device; returns its DeviceInfo.
napi_value Open(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    size_t argc = 1;
    napi_value argv[1];
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc < 1) throw ArgError{"expected the directories to search for cuBLAS"};
    Context& c = open_context(strings(env, argv[0]));
    napi_value obj;
    napi_create_object(env, &obj);
    napi_set_named_property(env, obj, "name", string(env, c.name));
    napi_set_named_property(env, obj, "computeCapability", string(env, c.compute_capability));
    napi_set_named_property(env, obj, "totalMemoryBytes", number(env, (double)c.total_memory));
    napi_set_named_property(env, obj, "cublas", string(env, c.cublas_version));
    return obj;
  });
}

napi_value Alloc(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 1);
    const int64_t bytes = a.dim(0, "bytes");
    if (bytes == 0) throw ArgError{"alloc: bytes must be positive"};
    return number(env, (double)reinterpret_cast<uintptr_t>(ctx().alloc((size_t)bytes)));
  });
}

napi_value Free(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 1);
    ctx().free(a.ptr(0, "ptr"));
    return undefined(env);
  });
}

// upload(dst, src, offsetBytes) and download(src, dst, offsetBytes)
napi_value Upload(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    char* dst = static_cast<char*>(a.ptr(0, "dst"));
    size_t bytes;
    const void* src = a.typed(1, "src", &bytes);
    const int64_t offset = a.dim(2, "offsetBytes");
    need(dst + offset, (int64_t)bytes, "upload: dst");
    ctx().upload(dst + offset, src, bytes);
    return undefined(env);
  });
}

napi_value Download(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    const char* src = static_cast<const char*>(a.ptr(0, "src"));
    size_t bytes;
    void* dst = a.typed(1, "dst", &bytes);
    const int64_t offset = a.dim(2, "offsetBytes");
    need(src + offset, (int64_t)bytes, "download: src");
    ctx().download(dst, src + offset, bytes);
    return undefined(env);
  });
}

napi_value Sync(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    ctx().sync();
    return undefined(env);
  });
}

napi_value Memory(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    Context& c = ctx();
    napi_value obj;
    napi_create_object(env, &obj);
    napi_set_named_property(env, obj, "inUseBytes", number(env, (double)c.in_use));
    napi_set_named_property(env, obj, "peakBytes", number(env, (double)c.peak));
    napi_set_named_property(env, obj, "reservedBytes", number(env, (double)c.reserved()));
    return obj;
  });
}

napi_value ResetPeak(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    Context& c = ctx();
    c.peak = c.in_use;
    return undefined(env);
  });
}

napi_value SetProfiling(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 1);
    ctx().profiling = a.flag(0);
    return undefined(env);
  });
}

napi_value TakeProfile(napi_env env, napi_callback_info) {
  return guard(env, [&] {
    const auto [ms, launches] = ctx().take_profile();
    napi_value obj;
    napi_create_object(env, &obj);
    napi_set_named_property(env, obj, "kernelMs", number(env, ms));
    napi_set_named_property(env, obj, "launches", number(env, (double)launches));
    return obj;
  });
}

napi_value SetPrecision(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 1);
    const std::string p = a.str(0, "precision");
    Context& c = ctx();
    if (p == "fp32")
      c.compute = CUBLAS_COMPUTE_32F;
    else if (p == "tf32")
      c.compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    else if (p == "bf16")
      c.compute = CUBLAS_COMPUTE_32F_FAST_16BF;
    else
      throw ArgError{"unknown precision '" + p + "'"};
    return undefined(env);
  });
}

// ---- Plain kernels.

// fill(y, dtype, value, n)
napi_value Fill(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    void* y = a.ptr(0, "y");
    const DType t = dtype_of(a.str(1, "dtype"));
    const double value = a.num(2, "value");
    const int64_t n = a.dim(3, "n");
    need(y, elems_bytes({n}), "fill: y");
    fill(y, t, value, n);
    return undefined(env);
  });
}

// copyStrided(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape)
napi_value CopyStrided(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    const uint32_t* src = static_cast<const uint32_t*>(a.ptr(0, "src"));
    const int64_t so = a.dim(1, "srcOffset");
    const auto ss = a.dims(2, "srcStrides");
    uint32_t* dst = static_cast<uint32_t*>(a.ptr(3, "dst"));
    const int64_t dof = a.dim(4, "dstOffset");
    const auto ds = a.dims(5, "dstStrides");
    const auto shape = a.dims(6, "shape");
    check_rank(shape, ss, ds);
    need(src + so, elems_bytes({strided_extent(shape, ss)}), "copyStrided: src");
    need(dst + dof, elems_bytes({strided_extent(shape, ds)}), "copyStrided: dst");
    copy_strided(src, so, ss.data(), dst, dof, ds.data(), shape.data(), (int)shape.size());
    return undefined(env);
  });
}

// binary(op, dtype, a, aStrides, b, bStrides, out, outShape)
napi_value Binary(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 8);
    const BinaryOp op = named<BinaryOp>(a.str(0, "op"), BINARY_OP_NAMES, "binary op");
    const DType t = dtype_of(a.str(1, "dtype"));
    const void* x = a.ptr(2, "a");
    const auto xs = a.dims(3, "aStrides");
    const void* y = a.ptr(4, "b");
    const auto ys = a.dims(5, "bStrides");
    void* out = a.ptr(6, "out");
    const auto shape = a.dims(7, "outShape");
    check_rank(shape, xs, ys);
    int64_t total = 1;
    for (int64_t e : shape) total *= e;
    need(x, elems_bytes({strided_extent(shape, xs)}), "binary: a");
    need(y, elems_bytes({strided_extent(shape, ys)}), "binary: b");
    need(out, elems_bytes({total}), "binary: out");
    binary(op, t, x, xs.data(), y, ys.data(), out, shape.data(), (int)shape.size());
    return undefined(env);
  });
}

// unary(op, x, y, n)
napi_value Unary(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    const UnaryOp op = named<UnaryOp>(a.str(0, "op"), UNARY_OP_NAMES, "unary op");
    const float* x = static_cast<const float*>(a.ptr(1, "x"));
    float* y = static_cast<float*>(a.ptr(2, "y"));
    const int64_t n = a.dim(3, "n");
    need(x, elems_bytes({n}), "unary: x");
    need(y, elems_bytes({n}), "unary: y");
    unary(op, x, y, n);
    return undefined(env);
  });
}

// cast(x, from, y, to, n)
napi_value Cast(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 5);
    const void* x = a.ptr(0, "x");
    const DType from = dtype_of(a.str(1, "from"));
    void* y = a.ptr(2, "y");
    const DType to = dtype_of(a.str(3, "to"));
    const int64_t n = a.dim(4, "n");
    need(x, elems_bytes({n}), "cast: x");
    need(y, elems_bytes({n}), "cast: y");
    cast(x, from, y, to, n);
    return undefined(env);
  });
}

// reduce(op, dtype, x, y, outer, inner)
napi_value Reduce(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    const ReduceOp op = named<ReduceOp>(a.str(0, "op"), REDUCE_OP_NAMES, "reduce op");
    const DType t = dtype_of(a.str(1, "dtype"));
    const void* x = a.ptr(2, "x");
    void* y = a.ptr(3, "y");
    const int64_t outer = a.dim(4, "outer"), inner = a.dim(5, "inner");
    need(x, elems_bytes({outer, inner}), "reduce: x");
    need(y, elems_bytes({outer}), "reduce: y");
    reduce(op, t, x, y, outer, inner);
    return undefined(env);
  });
}

// addN(xs, y, n)
napi_value AddN(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 3);
    const auto list = a.numbers(0, "xs");
    float* y = static_cast<float*>(a.ptr(1, "y"));
    const int64_t n = a.dim(2, "n");
    std::vector<const float*> xs;
    for (double p : list) {
      if (!(p > 0 && p < 9007199254740992.0) || p != std::floor(p)) throw ArgError{"xs must hold device addresses"};
      xs.push_back(reinterpret_cast<const float*>((uintptr_t)p));
      need(xs.back(), elems_bytes({n}), "addN: xs[i]");
    }
    need(y, elems_bytes({n}), "addN: y");
    add_n(xs.data(), (int)xs.size(), y, n);
    return undefined(env);
  });
}

// softmax(x, y, rows, cols)
napi_value Softmax(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    const float* x = static_cast<const float*>(a.ptr(0, "x"));
    float* y = static_cast<float*>(a.ptr(1, "y"));
    const int64_t rows = a.dim(2, "rows"), cols = a.dim(3, "cols");
    need(x, elems_bytes({rows, cols}), "softmax: x");
    need(y, elems_bytes({rows, cols}), "softmax: y");
    softmax(x, y, rows, cols);
    return undefined(env);
  });
}

// gather(x, indices, y, outer, dim, inner, count)
napi_value Gather(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    const uint32_t* x = static_cast<const uint32_t*>(a.ptr(0, "x"));
    const int32_t* idx = static_cast<const int32_t*>(a.ptr(1, "indices"));
    uint32_t* y = static_cast<uint32_t*>(a.ptr(2, "y"));
    const int64_t outer = a.dim(3, "outer"), dim = a.dim(4, "dim"), inner = a.dim(5, "inner"),
                  count = a.dim(6, "count");
    need(x, elems_bytes({outer, dim, inner}), "gather: x");
    need(idx, elems_bytes({count}), "gather: indices");
    need(y, elems_bytes({outer, count, inner}), "gather: y");
    gather(x, idx, y, outer, dim, inner, count);
    return undefined(env);
  });
}

// unsortedSegmentSum(x, ids, y, rows, inner, segments)
napi_value UnsortedSegmentSum(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    const float* x = static_cast<const float*>(a.ptr(0, "x"));
    const int32_t* ids = static_cast<const int32_t*>(a.ptr(1, "ids"));
    float* y = static_cast<float*>(a.ptr(2, "y"));
    const int64_t rows = a.dim(3, "rows"), inner = a.dim(4, "inner"), segments = a.dim(5, "segments");
    need(x, elems_bytes({rows, inner}), "unsortedSegmentSum: x");
    need(ids, elems_bytes({rows}), "unsortedSegmentSum: ids");
    need(y, elems_bytes({segments, inner}), "unsortedSegmentSum: y");
    segment_sum(x, ids, y, rows, inner, segments);
    return undefined(env);
  });
}

// gemm(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC)
napi_value Gemm(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 12);
    const float* A = static_cast<const float*>(a.ptr(0, "a"));
    const float* B = static_cast<const float*>(a.ptr(1, "b"));
    float* C = static_cast<float*>(a.ptr(2, "c"));
    const int64_t batch = a.dim(3, "batch"), m = a.dim(4, "m"), n = a.dim(5, "n"), k = a.dim(6, "k");
    const bool ta = a.flag(7), tb = a.flag(8);
    const int64_t sa = a.dim(9, "strideA"), sb = a.dim(10, "strideB"), sc = a.dim(11, "strideC");
    if (batch > 0) {
      const int64_t last = batch - 1;
      need(A, elems_bytes({last, sa}) + elems_bytes({m, k}), "gemm: a");
      need(B, elems_bytes({last, sb}) + elems_bytes({k, n}), "gemm: b");
      need(C, elems_bytes({last, sc}) + elems_bytes({m, n}), "gemm: c");
    }
    gemm(A, B, C, batch, m, n, k, ta, tb, sa, sb, sc);
    return undefined(env);
  });
}

// ---- The fused kernels.

// rmsnormFwd(x, g, y, rstd, rows, d, eps)
napi_value RmsnormFwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 7);
    const float* x = static_cast<const float*>(a.ptr(0, "x"));
    const float* g = static_cast<const float*>(a.ptr(1, "g"));
    float* y = static_cast<float*>(a.ptr(2, "y"));
    float* rstd = static_cast<float*>(a.ptr(3, "rstd"));
    const int64_t rows = a.dim(4, "rows"), d = a.dim(5, "d");
    const float eps = (float)a.num(6, "eps");
    need(x, elems_bytes({rows, d}), "rmsnormFwd: x");
    need(g, elems_bytes({d}), "rmsnormFwd: g");
    need(y, elems_bytes({rows, d}), "rmsnormFwd: y");
    need(rstd, elems_bytes({rows}), "rmsnormFwd: rstd");
    rmsnorm_fwd(x, g, y, rstd, rows, d, eps);
    return undefined(env);
  });
}

// rmsnormBwd(x, g, rstd, dy, dx, dg, rows, d)
napi_value RmsnormBwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 8);
    const float* x = static_cast<const float*>(a.ptr(0, "x"));
    const float* g = static_cast<const float*>(a.ptr(1, "g"));
    const float* rstd = static_cast<const float*>(a.ptr(2, "rstd"));
    const float* dy = static_cast<const float*>(a.ptr(3, "dy"));
    float* dx = static_cast<float*>(a.ptr(4, "dx"));
    float* dg = static_cast<float*>(a.ptr(5, "dg"));
    const int64_t rows = a.dim(6, "rows"), d = a.dim(7, "d");
    need(x, elems_bytes({rows, d}), "rmsnormBwd: x");
    need(g, elems_bytes({d}), "rmsnormBwd: g");
    need(rstd, elems_bytes({rows}), "rmsnormBwd: rstd");
    need(dy, elems_bytes({rows, d}), "rmsnormBwd: dy");
    need(dx, elems_bytes({rows, d}), "rmsnormBwd: dx");
    need(dg, elems_bytes({d}), "rmsnormBwd: dg");
    rmsnorm_bwd(x, g, rstd, dy, dx, dg, rows, d);
    return undefined(env);
  });
}

// swigluFwd(a, b, y, n)
napi_value SwigluFwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 4);
    const float* x = static_cast<const float*>(a.ptr(0, "a"));
    const float* b = static_cast<const float*>(a.ptr(1, "b"));
    float* y = static_cast<float*>(a.ptr(2, "y"));
    const int64_t n = a.dim(3, "n");
    need(x, elems_bytes({n}), "swigluFwd: a");
    need(b, elems_bytes({n}), "swigluFwd: b");
    need(y, elems_bytes({n}), "swigluFwd: y");
    swiglu_fwd(x, b, y, n);
    return undefined(env);
  });
}

// swigluBwd(a, b, dy, da, db, n)
napi_value SwigluBwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 6);
    const float* x = static_cast<const float*>(a.ptr(0, "a"));
    const float* b = static_cast<const float*>(a.ptr(1, "b"));
    const float* dy = static_cast<const float*>(a.ptr(2, "dy"));
    float* da = static_cast<float*>(a.ptr(3, "da"));
    float* db = static_cast<float*>(a.ptr(4, "db"));
    const int64_t n = a.dim(5, "n");
    for (const void* p : {(const void*)x, (const void*)b, (const void*)dy, (const void*)da, (const void*)db})
      need(p, elems_bytes({n}), "swigluBwd: an operand");
    swiglu_bwd(x, b, dy, da, db, n);
    return undefined(env);
  });
}

// rope(x, y, cos, sin, rows, T, heads, hd, sign)
napi_value Rope(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 9);
    const float* x = static_cast<const float*>(a.ptr(0, "x"));
    float* y = static_cast<float*>(a.ptr(1, "y"));
    const float* cos_t = static_cast<const float*>(a.ptr(2, "cos"));
    const float* sin_t = static_cast<const float*>(a.ptr(3, "sin"));
    const int64_t rows = a.dim(4, "rows"), T = a.dim(5, "T"), heads = a.dim(6, "heads"), hd = a.dim(7, "hd");
    const float sign = (float)a.num(8, "sign");
    if (T == 0 || hd % 2 != 0) throw Failure("rope: T must be positive and hd even");
    need(x, elems_bytes({rows, heads, hd}), "rope: x");
    need(y, elems_bytes({rows, heads, hd}), "rope: y");
    need(cos_t, elems_bytes({T, hd / 2}), "rope: cos");
    need(sin_t, elems_bytes({T, hd / 2}), "rope: sin");
    rope(x, y, cos_t, sin_t, rows, T, heads, hd, sign);
    return undefined(env);
  });
}

struct AttnSizes {
  int64_t B, T, H, Hkv, hd;
  int64_t q_bytes() const { return elems_bytes({B, T, H, hd}); }
  int64_t kv_bytes() const { return elems_bytes({B, T, Hkv, hd}); }
  int64_t lse_bytes() const { return elems_bytes({B, H, T}); }
};

AttnSizes attn_sizes(Args& a, size_t first) {
  return AttnSizes{a.dim(first, "B"), a.dim(first + 1, "T"), a.dim(first + 2, "H"), a.dim(first + 3, "Hkv"),
                   a.dim(first + 4, "hd")};
}

// attnFwd(q, k, v, o, lse, B, T, H, Hkv, hd)
napi_value AttnFwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 10);
    const float* q = static_cast<const float*>(a.ptr(0, "q"));
    const float* k = static_cast<const float*>(a.ptr(1, "k"));
    const float* v = static_cast<const float*>(a.ptr(2, "v"));
    float* o = static_cast<float*>(a.ptr(3, "o"));
    float* lse = static_cast<float*>(a.ptr(4, "lse"));
    const AttnSizes s = attn_sizes(a, 5);
    need(q, s.q_bytes(), "attnFwd: q");
    need(k, s.kv_bytes(), "attnFwd: k");
    need(v, s.kv_bytes(), "attnFwd: v");
    need(o, s.q_bytes(), "attnFwd: o");
    need(lse, s.lse_bytes(), "attnFwd: lse");
    attn_fwd(q, k, v, o, lse, s.B, s.T, s.H, s.Hkv, s.hd);
    return undefined(env);
  });
}

// attnBwd(q, k, v, o, lse, dout, dq, dk, dv, B, T, H, Hkv, hd)
napi_value AttnBwd(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 14);
    const float* q = static_cast<const float*>(a.ptr(0, "q"));
    const float* k = static_cast<const float*>(a.ptr(1, "k"));
    const float* v = static_cast<const float*>(a.ptr(2, "v"));
    const float* o = static_cast<const float*>(a.ptr(3, "o"));
    const float* lse = static_cast<const float*>(a.ptr(4, "lse"));
    const float* dout = static_cast<const float*>(a.ptr(5, "dout"));
    float* dq = static_cast<float*>(a.ptr(6, "dq"));
    float* dk = static_cast<float*>(a.ptr(7, "dk"));
    float* dv = static_cast<float*>(a.ptr(8, "dv"));
    const AttnSizes s = attn_sizes(a, 9);
    need(q, s.q_bytes(), "attnBwd: q");
    need(k, s.kv_bytes(), "attnBwd: k");
    need(v, s.kv_bytes(), "attnBwd: v");
    need(o, s.q_bytes(), "attnBwd: o");
    need(lse, s.lse_bytes(), "attnBwd: lse");
    need(dout, s.q_bytes(), "attnBwd: dout");
    need(dq, s.q_bytes(), "attnBwd: dq");
    need(dk, s.kv_bytes(), "attnBwd: dk");
    need(dv, s.kv_bytes(), "attnBwd: dv");
    attn_bwd(q, k, v, o, lse, dout, dq, dk, dv, s.B, s.T, s.H, s.Hkv, s.hd);
    return undefined(env);
  });
}

// linearXent(h, w, targets, loss, dh, dw, rows, d, V, withGrad): dh and dw may be 0 without withGrad.
napi_value LinearXent(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 10);
    const bool with_grad = a.flag(9);
    const float* h = static_cast<const float*>(a.ptr(0, "h"));
    const float* w = static_cast<const float*>(a.ptr(1, "w"));
    const int32_t* targets = static_cast<const int32_t*>(a.ptr(2, "targets"));
    float* loss = static_cast<float*>(a.ptr(3, "loss"));
    float* dh = static_cast<float*>(a.ptr(4, "dh", !with_grad));
    float* dw = static_cast<float*>(a.ptr(5, "dw", !with_grad));
    const int64_t rows = a.dim(6, "rows"), d = a.dim(7, "d"), V = a.dim(8, "V");
    need(h, elems_bytes({rows, d}), "linearXent: h");
    need(w, elems_bytes({V, d}), "linearXent: w");
    need(targets, elems_bytes({rows}), "linearXent: targets");
    need(loss, elems_bytes({rows}), "linearXent: loss");
    if (with_grad) {
      need(dh, elems_bytes({rows, d}), "linearXent: dh");
      need(dw, elems_bytes({V, d}), "linearXent: dw");
    }
    linear_xent(h, w, targets, loss, dh, dw, rows, d, V, with_grad);
    return undefined(env);
  });
}

// adamw(table, count, lr, beta1, beta2, eps, c1, c2, gscale): table is a Float64Array of count rows
// [p, g, m, v, pOut, mOut, vOut, n, wd] (kernels/cuda/addon.ts packs it).
constexpr size_t ADAMW_FIELDS = 9;
napi_value Adamw(napi_env env, napi_callback_info info) {
  return guard(env, [&] {
    Args a(env, info, 9);
    const int64_t count = a.dim(1, "count");
    const double* t = a.f64(0, (size_t)count * ADAMW_FIELDS, "table");
    const AdamwScalars s{(float)a.num(2, "lr"), (float)a.num(3, "beta1"), (float)a.num(4, "beta2"),
                         (float)a.num(5, "eps"), (float)a.num(6, "c1"),    (float)a.num(7, "c2"),
                         (float)a.num(8, "gscale")};
    std::vector<AdamwTensor> tensors(count);
    for (int64_t i = 0; i < count; i++) {
      const double* r = t + i * ADAMW_FIELDS;
      for (size_t f = 0; f < 8; f++)
        if (!(r[f] >= (f < 7 ? 1 : 0) && r[f] < 9007199254740992.0) || r[f] != std::floor(r[f]))
          throw ArgError{"adamw: tensor " + std::to_string(i) + " has a bad address or size"};
      const int64_t n = (int64_t)r[7];
      AdamwTensor& x = tensors[i];
      x.p = reinterpret_cast<const float*>((uintptr_t)r[0]);
      x.g = reinterpret_cast<const float*>((uintptr_t)r[1]);
      x.m = reinterpret_cast<const float*>((uintptr_t)r[2]);
      x.v = reinterpret_cast<const float*>((uintptr_t)r[3]);
      x.p_out = reinterpret_cast<float*>((uintptr_t)r[4]);
      x.m_out = reinterpret_cast<float*>((uintptr_t)r[5]);
      x.v_out = reinterpret_cast<float*>((uintptr_t)r[6]);
      x.n = n;
      x.wd = (float)r[8];
      for (size_t f = 0; f < 7; f++)
        need(reinterpret_cast<const void*>((uintptr_t)r[f]), elems_bytes({n}), "adamw: a tensor's buffer");
    }
    adamw(tensors.data(), (int)count, s);
    return undefined(env);
  });
}

}  // namespace

}  // namespace ringlet

NAPI_MODULE_INIT() {
  using namespace ringlet;
  const napi_property_descriptor props[] = {
      {"deviceCount", nullptr, DeviceCount, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"loadCublas", nullptr, LoadCublas, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"open", nullptr, Open, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"alloc", nullptr, Alloc, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"free", nullptr, Free, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"upload", nullptr, Upload, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"download", nullptr, Download, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sync", nullptr, Sync, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"memory", nullptr, Memory, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"resetPeak", nullptr, ResetPeak, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setProfiling", nullptr, SetProfiling, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"takeProfile", nullptr, TakeProfile, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setPrecision", nullptr, SetPrecision, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"fill", nullptr, Fill, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copyStrided", nullptr, CopyStrided, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, Unary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"cast", nullptr, Cast, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduce", nullptr, Reduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"addN", nullptr, AddN, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmax", nullptr, Softmax, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gather", nullptr, Gather, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unsortedSegmentSum", nullptr, UnsortedSegmentSum, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsnormFwd", nullptr, RmsnormFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rmsnormBwd", nullptr, RmsnormBwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"swigluFwd", nullptr, SwigluFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"swigluBwd", nullptr, SwigluBwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rope", nullptr, Rope, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attnFwd", nullptr, AttnFwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attnBwd", nullptr, AttnBwd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"linearXent", nullptr, LinearXent, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamw", nullptr, Adamw, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
