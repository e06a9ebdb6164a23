// The device interface the `cuda` TensorFlow.js backend (kernels/cuda/backend.ts) computes through: device
// memory and the kernels, nothing about tensors. Two implementations: the CUDA addon (kernels/cuda/src,
// loaded by kernels/cuda/addon.ts), and a host implementation (kernels/cuda/host-device.ts) that runs the
// CPU kernels on buffers in host memory, so that the backend's TypeScript is tested where no GPU exists.
//
// Conventions, for every implementation:
// - A buffer is a `DevicePtr`: a device address (a byte address below 2^53) that `alloc` handed out. Every
//   element is 4 bytes: float32, int32, or bool stored as int32 0/1.
// - Arrays are row-major and contiguous unless strides are given. Strides and shapes count elements, and
//   have the same length (rank 0 to MAX_RANK); a stride of 0 broadcasts.
// - Kernels are enqueued on the device's one stream, in call order; only `download`, `sync` and
//   `takeProfile` wait for them. A kernel's outputs never alias its inputs unless its comment says so.
// - Sizes are checked by the caller (the backend); an implementation may check again and throw.

/** A device address, as a JS number. 0 is never a valid buffer. */
export type DevicePtr = number;

/** How BatchMatMul multiplies: full fp32, or the tensor cores' TF32 or bf16 with fp32 accumulation. The
 *  tensors stay float32 in memory; only the products' inputs are rounded. */
export const PRECISIONS = ['fp32', 'tf32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Element types in device memory. bool is int32 0/1. */
export type DeviceDType = 'float32' | 'int32' | 'bool';

export const MAX_RANK = 6;

export const BINARY_OPS = [
  'add',
  'sub',
  'mul',
  'div',
  'maximum',
  'minimum',
  'pow',
  'equal',
  'notEqual',
  'less',
  'greater',
] as const;
/** Elementwise a ∘ b. Comparisons write bool (int32 0/1); the rest write a's dtype (float32 or int32). */
export type BinaryOp = (typeof BINARY_OPS)[number];

export const UNARY_OPS = [
  'neg',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'square',
  'abs',
  'sigmoid',
  'tanh',
  'relu',
  'reciprocal',
] as const;
/** Elementwise f(x) on float32. */
export type UnaryOp = (typeof UNARY_OPS)[number];

export const REDUCE_OPS = ['sum', 'mean', 'max', 'min', 'prod'] as const;
/** Reduction over the innermost axis of x viewed as [outer, inner]; mean is the sum divided by inner. */
export type ReduceOp = (typeof REDUCE_OPS)[number];

export interface DeviceInfo {
  /** e.g. "NVIDIA H100 80GB HBM3", or "host (CPU kernels)". */
  name: string;
  /** "9.0"; "" for the host implementation. */
  computeCapability: string;
  totalMemoryBytes: number;
  /** The cuBLAS library in use ("" for the host implementation). */
  cublas: string;
}

export interface DeviceMemory {
  /** Bytes in buffers handed out and not yet freed. */
  inUseBytes: number;
  /** The most `inUseBytes` has been since the last resetPeak. */
  peakBytes: number;
  /** Bytes the stream-ordered pool holds from the driver (≥ in use). */
  reservedBytes: number;
}

/** Time the device spent in kernels since profiling was last taken, from events around each launch. */
export interface DeviceProfile {
  kernelMs: number;
  launches: number;
}

export interface Device {
  info(): DeviceInfo;

  // ---- Memory.
  /** A buffer of `bytes` (> 0) from the stream-ordered pool; its contents are undefined. */
  alloc(bytes: number): DevicePtr;
  /** Returns the buffer to the pool, after every kernel enqueued before has run. */
  free(ptr: DevicePtr): void;
  /** Copies src to the buffer at byte offset `offsetBytes` (through pinned host memory); returns when src may be reused. */
  upload(dst: DevicePtr, src: Float32Array | Int32Array, offsetBytes?: number): void;
  /** Waits for the stream, then copies `dst.length` elements from the buffer at byte offset `offsetBytes`. */
  download(src: DevicePtr, dst: Float32Array | Int32Array, offsetBytes?: number): void;
  /** Waits until every enqueued kernel has run; throws the first asynchronous error, naming the kernel. */
  sync(): void;
  memory(): DeviceMemory;
  resetPeak(): void;
  /** Events around every launch from now on (costs a little), or not. */
  setProfiling(on: boolean): void;
  /** Waits for the stream, returns the profile since the last call and starts a new one. */
  takeProfile(): DeviceProfile;
  /** The BatchMatMul precision from now on. */
  setPrecision(precision: Precision): void;

  // ---- Plain kernels.
  /** y[i] = value, n elements. */
  fill(y: DevicePtr, dtype: DeviceDType, value: number, n: number): void;
  /**
   * dst[dstOffset + Σ idx·dstStrides] = src[srcOffset + Σ idx·srcStrides] for every index of `shape`
   * (offsets in elements): Transpose, Slice, Concat, Split, Tile and contiguous copies.
   */
  copyStrided(
    src: DevicePtr,
    srcOffset: number,
    srcStrides: number[],
    dst: DevicePtr,
    dstOffset: number,
    dstStrides: number[],
    shape: number[],
  ): void;
  /** out[idx] = a[Σ idx·aStrides] ∘ b[Σ idx·bStrides] over `outShape`; `dtype` is the inputs' dtype. */
  binary(
    op: BinaryOp,
    dtype: DeviceDType,
    a: DevicePtr,
    aStrides: number[],
    b: DevicePtr,
    bStrides: number[],
    out: DevicePtr,
    outShape: number[],
  ): void;
  /** y = f(x), n float32 elements; y may be x. */
  unary(op: UnaryOp, x: DevicePtr, y: DevicePtr, n: number): void;
  /** y = x converted, n elements (to bool: x ≠ 0; float32 to int32 truncates toward zero). */
  cast(x: DevicePtr, from: DeviceDType, y: DevicePtr, to: DeviceDType, n: number): void;
  /** y[o] = reduce(x[o, 0..inner)), for x [outer, inner] of `dtype`. In a fixed order, so runs repeat bit for bit. */
  reduce(op: ReduceOp, dtype: DeviceDType, x: DevicePtr, y: DevicePtr, outer: number, inner: number): void;
  /** y = Σ xs, n float32 elements each, summed in list order. */
  addN(xs: DevicePtr[], y: DevicePtr, n: number): void;
  /** Softmax over the last axis of [rows, cols], float32. */
  softmax(x: DevicePtr, y: DevicePtr, rows: number, cols: number): void;
  /**
   * GatherV2: x viewed [outer, dim, inner], int32 indices [count] (each in [0, dim), else the kernel writes
   * zeros for that row and `sync` throws), y [outer, count, inner].
   */
  gather(x: DevicePtr, indices: DevicePtr, y: DevicePtr, outer: number, dim: number, inner: number, count: number): void;
  /**
   * UnsortedSegmentSum: y [segments, inner] = Σ over rows r with ids[r] = s of x[r, :], x [rows, inner]
   * float32, ids int32 (rows outside [0, segments) are dropped). Deterministic: rows add in ascending order.
   */
  unsortedSegmentSum(x: DevicePtr, ids: DevicePtr, y: DevicePtr, rows: number, inner: number, segments: number): void;
  /**
   * C = op(A)·op(B) for `batch` products, row-major: A [m, k] (or [k, m] with transA), B [k, n] (or [n, k]
   * with transB), C [m, n]; stride 0 shares one matrix across the batch. cublasGemmStridedBatchedEx on the
   * GPU, in the precision set by setPrecision.
   */
  gemm(
    a: DevicePtr,
    b: DevicePtr,
    c: DevicePtr,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
    strideC: number,
  ): void;

  // ---- The fused kernels of kernels/native, one for one (kernels/native.ts documents each), on device buffers.
  rmsnormFwd(x: DevicePtr, g: DevicePtr, y: DevicePtr, rstd: DevicePtr, rows: number, d: number, eps: number): void;
  rmsnormBwd(
    x: DevicePtr,
    g: DevicePtr,
    rstd: DevicePtr,
    dy: DevicePtr,
    dx: DevicePtr,
    dg: DevicePtr,
    rows: number,
    d: number,
  ): void;
  swigluFwd(a: DevicePtr, b: DevicePtr, y: DevicePtr, n: number): void;
  swigluBwd(a: DevicePtr, b: DevicePtr, dy: DevicePtr, da: DevicePtr, db: DevicePtr, n: number): void;
  /** cos and sin are device buffers [T, hd/2] (the backend uploads each table once). */
  rope(
    x: DevicePtr,
    y: DevicePtr,
    cos: DevicePtr,
    sin: DevicePtr,
    rows: number,
    T: number,
    heads: number,
    hd: number,
    sign: number,
  ): void;
  attnFwd(
    q: DevicePtr,
    k: DevicePtr,
    v: DevicePtr,
    o: DevicePtr,
    lse: DevicePtr,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    hd: number,
  ): void;
  attnBwd(
    q: DevicePtr,
    k: DevicePtr,
    v: DevicePtr,
    o: DevicePtr,
    lse: DevicePtr,
    dout: DevicePtr,
    dq: DevicePtr,
    dk: DevicePtr,
    dv: DevicePtr,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    hd: number,
  ): void;
  /** Per-row loss [rows]; dh [rows, d] and dw [V, d] (the mean loss's gradients) only with withGrad (else pass 0). */
  linearXent(
    h: DevicePtr,
    w: DevicePtr,
    targets: DevicePtr,
    loss: DevicePtr,
    dh: DevicePtr,
    dw: DevicePtr,
    rows: number,
    d: number,
    V: number,
    withGrad: boolean,
  ): void;
  /**
   * Multi-tensor AdamW: one launch updates every tensor i of `n[i]` elements, reading p, g, m, v and writing
   * pOut, mOut, vOut (which may be p, m, v: in place). The scalars are kernels/native.ts adamw's; weight
   * decay per tensor.
   */
  adamw(
    tensors: Array<{
      p: DevicePtr;
      g: DevicePtr;
      m: DevicePtr;
      v: DevicePtr;
      pOut: DevicePtr;
      mOut: DevicePtr;
      vOut: DevicePtr;
      n: number;
      wd: number;
    }>,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    c1: number,
    c2: number,
    gscale: number,
  ): void;
}
