// The Device of kernels/cuda/device.ts on host memory, so the cuda backend's TypeScript runs (and is tested)
// where no GPU exists. gemm and the fused kernels call the native addon exactly as kernels/native-kernels.ts
// does on the wasm backend; the plain kernels are loops that round like tfjs-backend-wasm's C++ (float32
// arithmetic, reductions accumulated in order). So a training step here matches the wasm path bit for bit.
// It is strict where a GPU would silently corrupt memory: an unknown or freed pointer, or an access past a
// buffer's end, throws. It counts allocations and bytes for the tests of the backend's reference counting.
import type {
  BinaryOp,
  Device,
  DeviceDType,
  DeviceInfo,
  DeviceMemory,
  DevicePtr,
  DeviceProfile,
  Precision,
  ReduceOp,
  UnaryOp,
} from './device.js';
import { loadNative, nativeUnavailableReason, type NativeKernels } from '../native.js';

const BASE = 0x10_0000; // addresses start here, so 0 and small numbers are never valid
const ALIGN = 256; // as cudaMallocAsync aligns

const f = Math.fround;
const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / f(Math.sqrt(x)),
  square: (x) => x * x,
  abs: Math.abs,
  sigmoid: (x) => 1 / f(1 + f(Math.exp(-x))),
  tanh: Math.tanh,
  relu: (x) => (x > 0 ? x : 0),
  reciprocal: (x) => 1 / x,
};

const FLOAT_BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  pow: Math.pow,
  equal: (a, b) => +(a === b),
  notEqual: (a, b) => +(a !== b),
  less: (a, b) => +(a < b),
  greater: (a, b) => +(a > b),
};

// int32 results wrap as the device's 32-bit arithmetic does; division truncates.
const INT_BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  ...FLOAT_BINARY,
  add: (a, b) => (a + b) | 0,
  sub: (a, b) => (a - b) | 0,
  mul: Math.imul,
  div: (a, b) => (b === 0 ? 0 : Math.trunc(a / b) | 0),
  pow: (a, b) => Math.pow(a, b) | 0,
};

// Reductions accumulate in float32, in order, from the first element (tfjs-backend-wasm's Sum, Mean, Max...).
const REDUCE: Record<ReduceOp, { start: number; step: (acc: number, x: number) => number }> = {
  sum: { start: 0, step: (acc, x) => acc + x },
  mean: { start: 0, step: (acc, x) => acc + x },
  prod: { start: 1, step: (acc, x) => acc * x },
  max: { start: -Infinity, step: (acc, x) => (x > acc || Number.isNaN(x) ? x : acc) },
  min: { start: Infinity, step: (acc, x) => (x < acc || Number.isNaN(x) ? x : acc) },
};

export class HostDevice implements Device {
  private readonly buffers = new Map<DevicePtr, ArrayBuffer>();
  private next = BASE;
  private inUse = 0;
  private peak = 0;
  private profiling = false;
  private launches = 0;
  private kernelMs = 0;
  private pendingError: Error | null = null;
  private readonly native: NativeKernels;
  /** Buffers handed out and returned, since construction (the tests read these). */
  allocs = 0;
  frees = 0;
  /** The precision last asked for; recorded only, the host's sgemm is fp32 whatever is asked. */
  precision: Precision = 'fp32';

  constructor() {
    const native = loadNative();
    if (!native) throw new Error(`the host device runs the native kernels, which are unavailable: ${nativeUnavailableReason()}`);
    this.native = native;
  }

  info(): DeviceInfo {
    return { name: 'host (CPU kernels)', computeCapability: '', totalMemoryBytes: 0, cublas: '' };
  }

  // ---- Memory.

  alloc(bytes: number): DevicePtr {
    if (!Number.isInteger(bytes) || bytes <= 0) throw new Error(`alloc: ${bytes} bytes (must be a positive integer)`);
    const ptr = this.next;
    this.next += Math.ceil(bytes / ALIGN) * ALIGN;
    if (this.next > Number.MAX_SAFE_INTEGER) throw new Error('alloc: address space exhausted');
    this.buffers.set(ptr, new ArrayBuffer(bytes));
    this.allocs++;
    this.inUse += bytes;
    this.peak = Math.max(this.peak, this.inUse);
    return ptr;
  }

  free(ptr: DevicePtr): void {
    const bytes = this.buffer(ptr, 'free').byteLength;
    this.buffers.delete(ptr);
    this.frees++;
    this.inUse -= bytes;
  }

  upload(dst: DevicePtr, src: Float32Array | Int32Array, offsetBytes = 0): void {
    this.i32(dst, offsetBytes / 4, src.length, 'upload').set(new Int32Array(src.buffer, src.byteOffset, src.length));
  }

  download(src: DevicePtr, dst: Float32Array | Int32Array, offsetBytes = 0): void {
    this.sync();
    new Int32Array(dst.buffer, dst.byteOffset, dst.length).set(this.i32(src, offsetBytes / 4, dst.length, 'download'));
  }

  sync(): void {
    const error = this.pendingError;
    this.pendingError = null;
    if (error) throw error;
  }

  memory(): DeviceMemory {
    return { inUseBytes: this.inUse, peakBytes: this.peak, reservedBytes: this.inUse };
  }

  resetPeak(): void {
    this.peak = this.inUse;
  }

  setProfiling(on: boolean): void {
    this.profiling = on;
  }

  takeProfile(): DeviceProfile {
    const profile = { kernelMs: this.kernelMs, launches: this.launches };
    this.kernelMs = 0;
    this.launches = 0;
    return profile;
  }

  setPrecision(precision: Precision): void {
    this.precision = precision;
  }

  // ---- Views, checked.

  private buffer(ptr: DevicePtr, what: string): ArrayBuffer {
    const buffer = this.buffers.get(ptr);
    if (!buffer) throw new Error(`${what}: 0x${ptr.toString(16)} is not a live buffer (never allocated, or freed)`);
    return buffer;
  }

  /** `length` elements from element `offset` of the buffer, or (without length) everything from offset. */
  private f32(ptr: DevicePtr, offset = 0, length?: number, what = 'kernel'): Float32Array {
    const [buffer, n] = this.span(ptr, offset, length, what);
    return new Float32Array(buffer, offset * 4, n);
  }

  private i32(ptr: DevicePtr, offset = 0, length?: number, what = 'kernel'): Int32Array {
    const [buffer, n] = this.span(ptr, offset, length, what);
    return new Int32Array(buffer, offset * 4, n);
  }

  private span(ptr: DevicePtr, offset: number, length: number | undefined, what: string): [ArrayBuffer, number] {
    const buffer = this.buffer(ptr, what);
    const elements = buffer.byteLength / 4;
    const n = length ?? elements - offset;
    if (!Number.isInteger(offset) || offset < 0 || n < 0 || offset + n > elements)
      throw new Error(`${what}: elements [${offset}, ${offset + n}) are outside the ${elements} of 0x${ptr.toString(16)}`);
    return [buffer, n];
  }

  private view(ptr: DevicePtr, dtype: DeviceDType, what: string): Float32Array | Int32Array {
    return dtype === 'float32' ? this.f32(ptr, 0, undefined, what) : this.i32(ptr, 0, undefined, what);
  }

  /** Counts a launch and times it when profiling, as the CUDA events around each launch do. */
  private launch(fn: () => void): void {
    const start = this.profiling ? performance.now() : 0;
    fn();
    this.launches++;
    if (this.profiling) this.kernelMs += performance.now() - start;
  }

  // ---- Plain kernels.

  fill(y: DevicePtr, dtype: DeviceDType, value: number, n: number): void {
    this.launch(() => {
      if (dtype === 'float32') this.f32(y, 0, n, 'fill').fill(value);
      else this.i32(y, 0, n, 'fill').fill(dtype === 'bool' ? +(value !== 0) : value);
    });
  }

  copyStrided(
    src: DevicePtr,
    srcOffset: number,
    srcStrides: number[],
    dst: DevicePtr,
    dstOffset: number,
    dstStrides: number[],
    shape: number[],
  ): void {
    this.launch(() => {
      const from = this.i32(src, 0, undefined, 'copyStrided source');
      const to = this.i32(dst, 0, undefined, 'copyStrided destination');
      checkWalk(from.length, srcOffset, srcStrides, shape, 'copyStrided source');
      checkWalk(to.length, dstOffset, dstStrides, shape, 'copyStrided destination');
      walk(shape, [srcStrides, dstStrides], [srcOffset, dstOffset], ([s, d]) => (to[d] = from[s]));
    });
  }

  binary(
    op: BinaryOp,
    dtype: DeviceDType,
    a: DevicePtr,
    aStrides: number[],
    b: DevicePtr,
    bStrides: number[],
    out: DevicePtr,
    outShape: number[],
  ): void {
    this.launch(() => {
      const av = this.view(a, dtype, `${op} a`);
      const bv = this.view(b, dtype, `${op} b`);
      const n = outShape.reduce((x, y) => x * y, 1);
      const comparison = op === 'equal' || op === 'notEqual' || op === 'less' || op === 'greater';
      const ov = comparison || dtype !== 'float32' ? this.i32(out, 0, n, op) : this.f32(out, 0, n, op);
      checkWalk(av.length, 0, aStrides, outShape, `${op} a`);
      checkWalk(bv.length, 0, bStrides, outShape, `${op} b`);
      const fn = dtype === 'float32' ? FLOAT_BINARY[op] : INT_BINARY[op];
      let i = 0;
      walk(outShape, [aStrides, bStrides], [0, 0], ([ai, bi]) => (ov[i++] = fn(av[ai], bv[bi])));
    });
  }

  unary(op: UnaryOp, x: DevicePtr, y: DevicePtr, n: number): void {
    this.launch(() => {
      const xv = this.f32(x, 0, n, op);
      const yv = this.f32(y, 0, n, op);
      const fn = UNARY[op];
      for (let i = 0; i < n; i++) yv[i] = fn(xv[i]);
    });
  }

  cast(x: DevicePtr, from: DeviceDType, y: DevicePtr, to: DeviceDType, n: number): void {
    this.launch(() => {
      const xv = from === 'float32' ? this.f32(x, 0, n, 'cast') : this.i32(x, 0, n, 'cast');
      const yv = to === 'float32' ? this.f32(y, 0, n, 'cast') : this.i32(y, 0, n, 'cast');
      for (let i = 0; i < n; i++) yv[i] = to === 'bool' ? +(xv[i] !== 0) : to === 'int32' ? Math.trunc(xv[i]) | 0 : xv[i];
    });
  }

  reduce(op: ReduceOp, dtype: DeviceDType, x: DevicePtr, y: DevicePtr, outer: number, inner: number): void {
    this.launch(() => {
      const float = dtype === 'float32';
      const xv = float ? this.f32(x, 0, outer * inner, op) : this.i32(x, 0, outer * inner, op);
      const yv = float ? this.f32(y, 0, outer, op) : this.i32(y, 0, outer, op);
      const { start, step } = REDUCE[op];
      const round = float ? f : (v: number) => v | 0;
      for (let o = 0; o < outer; o++) {
        let acc = start;
        for (let j = o * inner; j < (o + 1) * inner; j++) acc = round(step(acc, xv[j]));
        yv[o] = op === 'mean' ? acc / inner : acc;
      }
    });
  }

  addN(xs: DevicePtr[], y: DevicePtr, n: number): void {
    this.launch(() => {
      const views = xs.map((x) => this.f32(x, 0, n, 'addN'));
      const yv = this.f32(y, 0, n, 'addN');
      for (let i = 0; i < n; i++) {
        let acc = views[0][i];
        for (let j = 1; j < views.length; j++) acc = f(acc + views[j][i]);
        yv[i] = acc;
      }
    });
  }

  softmax(x: DevicePtr, y: DevicePtr, rows: number, cols: number): void {
    this.launch(() => {
      const xv = this.f32(x, 0, rows * cols, 'softmax');
      const yv = this.f32(y, 0, rows * cols, 'softmax');
      for (let r = 0; r < rows; r++) {
        const row = xv.subarray(r * cols, (r + 1) * cols);
        const out = yv.subarray(r * cols, (r + 1) * cols);
        let max = -Infinity;
        for (const v of row) max = Math.max(max, v);
        let sum = 0;
        for (let j = 0; j < cols; j++) sum = f(sum + (out[j] = Math.exp(row[j] - max)));
        for (let j = 0; j < cols; j++) out[j] /= sum;
      }
    });
  }

  gather(x: DevicePtr, indices: DevicePtr, y: DevicePtr, outer: number, dim: number, inner: number, count: number): void {
    this.launch(() => {
      const xv = this.i32(x, 0, outer * dim * inner, 'gather x');
      const ids = this.i32(indices, 0, count, 'gather indices');
      const yv = this.i32(y, 0, outer * count * inner, 'gather y');
      for (let o = 0; o < outer; o++)
        for (let c = 0; c < count; c++) {
          const id = ids[c];
          const dst = (o * count + c) * inner;
          if (id < 0 || id >= dim) {
            yv.fill(0, dst, dst + inner);
            this.pendingError ??= new Error(`gather: index ${id} at ${c} is outside [0, ${dim})`);
          } else yv.set(xv.subarray((o * dim + id) * inner, (o * dim + id + 1) * inner), dst);
        }
    });
  }

  unsortedSegmentSum(x: DevicePtr, ids: DevicePtr, y: DevicePtr, rows: number, inner: number, segments: number): void {
    this.launch(() => {
      const xv = this.f32(x, 0, rows * inner, 'unsortedSegmentSum x');
      const iv = this.i32(ids, 0, rows, 'unsortedSegmentSum ids');
      const yv = this.f32(y, 0, segments * inner, 'unsortedSegmentSum y').fill(0);
      for (let r = 0; r < rows; r++) {
        const s = iv[r];
        if (s < 0 || s >= segments) continue;
        for (let j = 0; j < inner; j++) yv[s * inner + j] += xv[r * inner + j];
      }
    });
  }

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
  ): void {
    this.launch(() => {
      // The addon's sgemm writes its products back to back; another output stride runs product by product.
      if (strideC === m * n || batch === 1)
        this.native.sgemm(this.f32(a), this.f32(b), this.f32(c), batch, m, n, k, transA, transB, strideA, strideB);
      else
        for (let i = 0; i < batch; i++)
          this.native.sgemm(
            this.f32(a, i * strideA),
            this.f32(b, i * strideB),
            this.f32(c, i * strideC),
            1,
            m,
            n,
            k,
            transA,
            transB,
            0,
            0,
          );
    });
  }

  // ---- The fused kernels: the addon checks every array's length against the sizes.

  rmsnormFwd(x: DevicePtr, g: DevicePtr, y: DevicePtr, rstd: DevicePtr, rows: number, d: number, eps: number): void {
    this.launch(() => this.native.rmsnormFwd(this.f32(x), this.f32(g), this.f32(y), this.f32(rstd), rows, d, eps));
  }

  rmsnormBwd(
    x: DevicePtr,
    g: DevicePtr,
    rstd: DevicePtr,
    dy: DevicePtr,
    dx: DevicePtr,
    dg: DevicePtr,
    rows: number,
    d: number,
  ): void {
    this.launch(() =>
      this.native.rmsnormBwd(this.f32(x), this.f32(g), this.f32(rstd), this.f32(dy), this.f32(dx), this.f32(dg), rows, d),
    );
  }

  swigluFwd(a: DevicePtr, b: DevicePtr, y: DevicePtr, n: number): void {
    this.launch(() => this.native.swigluFwd(this.f32(a), this.f32(b), this.f32(y), n));
  }

  swigluBwd(a: DevicePtr, b: DevicePtr, dy: DevicePtr, da: DevicePtr, db: DevicePtr, n: number): void {
    this.launch(() => this.native.swigluBwd(this.f32(a), this.f32(b), this.f32(dy), this.f32(da), this.f32(db), n));
  }

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
  ): void {
    this.launch(() => this.native.rope(this.f32(x), this.f32(y), this.f32(cos), this.f32(sin), rows, T, heads, hd, sign));
  }

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
  ): void {
    this.launch(() => this.native.attnFwd(this.f32(q), this.f32(k), this.f32(v), this.f32(o), this.f32(lse), B, T, H, Hkv, hd));
  }

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
  ): void {
    this.launch(() =>
      this.native.attnBwd(
        this.f32(q),
        this.f32(k),
        this.f32(v),
        this.f32(o),
        this.f32(lse),
        this.f32(dout),
        this.f32(dq),
        this.f32(dk),
        this.f32(dv),
        B,
        T,
        H,
        Hkv,
        hd,
      ),
    );
  }

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
  ): void {
    const optional = (ptr: DevicePtr) => (withGrad ? this.f32(ptr) : new Float32Array(0));
    this.launch(() =>
      this.native.linearXent(
        this.f32(h),
        this.f32(w),
        this.i32(targets),
        this.f32(loss),
        optional(dh),
        optional(dw),
        rows,
        d,
        V,
        withGrad,
      ),
    );
  }

  adamw(
    tensors: Parameters<Device['adamw']>[0],
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    c1: number,
    c2: number,
    gscale: number,
  ): void {
    this.launch(() => {
      for (const t of tensors) {
        const views = [t.p, t.g, t.m, t.v, t.pOut, t.mOut, t.vOut].map((ptr) => this.f32(ptr, 0, t.n, 'adamw'));
        const [p, g, m, v, pOut, mOut, vOut] = views;
        this.native.adamw(p, g, m, v, pOut, mOut, vOut, t.n, lr, beta1, beta2, eps, t.wd, c1, c2, gscale);
      }
    });
  }
}

/** Throws unless offset + Σ idx·strides stays inside [0, length) for every index of `shape`. */
function checkWalk(length: number, offset: number, strides: number[], shape: number[], what: string): void {
  if (shape.some((d) => d === 0)) return;
  let lo = offset;
  let hi = offset;
  shape.forEach((d, i) => {
    const span = (d - 1) * strides[i];
    if (span < 0) lo += span;
    else hi += span;
  });
  if (lo < 0 || hi >= length) throw new Error(`${what}: the walk reaches elements [${lo}, ${hi}] of a buffer of ${length}`);
}

/** Calls visit with the element offsets of every operand, for every index of `shape` in row-major order. */
function walk(shape: number[], strides: number[][], offsets: number[], visit: (at: number[]) => void): void {
  const rank = shape.length;
  const at = offsets.slice();
  const idx = new Array<number>(rank).fill(0);
  if (shape.some((d) => d === 0)) return;
  for (;;) {
    visit(at);
    let axis = rank - 1;
    for (; axis >= 0; axis--) {
      idx[axis]++;
      strides.forEach((s, j) => (at[j] += s[axis]));
      if (idx[axis] < shape[axis]) break;
      strides.forEach((s, j) => (at[j] -= s[axis] * shape[axis]));
      idx[axis] = 0;
    }
    if (axis < 0) return;
  }
}
