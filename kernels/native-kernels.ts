// TensorFlow.js kernels backed by the native addon (kernels/native.ts), registered for the wasm and cpu
// backends: BatchMatMul through OpenBLAS sgemm (replacing the stock kernel), and Ringlet's own fused
// kernels (Ringlet* names) that lm/ops.ts calls through tf.customGrad. Each kernel reads its inputs
// where the backend keeps them (the wasm heap, or the cpu backend's typed arrays) and has the addon write
// straight into outputs allocated there, so nothing is copied.
import * as tf from '@tensorflow/tfjs';
import { util } from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { gemmPlan } from './matmul-shape.js';
import { loadNative, type NativeKernels } from './native.js';

export type NativeBackendName = 'wasm' | 'cpu';
type Arr = Float32Array | Int32Array;

/** The names of Ringlet's fused kernels, as registered with tfjs. */
export const KERNELS = {
  rmsNorm: 'RingletRmsNorm',
  rmsNormGrad: 'RingletRmsNormGrad',
  swiglu: 'RingletSwiGlu',
  swigluGrad: 'RingletSwiGluGrad',
  rope: 'RingletRope',
  attention: 'RingletAttention',
  attentionGrad: 'RingletAttentionGrad',
  linearCrossEntropy: 'RingletLinearCrossEntropy',
  adamw: 'RingletAdamW',
} as const;

const installed = new Set<NativeBackendName>();

/**
 * Registers the native kernels for `backendName` (call before the backend initialises on wasm, so tfjs
 * runs the stock BatchMatMul's setup, which the fallback needs). Returns false when the addon is absent.
 * `fallbackMatMul` runs the products sgemm does not handle (non-float32, two-way broadcasting).
 */
export function installNativeKernels(backendName: NativeBackendName, fallbackMatMul: KernelConfig): boolean {
  const native = loadNative();
  if (!native) return false;
  if (installed.has(backendName)) return true;
  const io = backendName === 'wasm' ? wasmIo : cpuIo;
  const configs: KernelConfig[] = [
    { ...fallbackMatMul, kernelFunc: batchMatMul(native, io, fallbackMatMul) },
    ...fusedKernels(native, io).map(([kernelName, kernelFunc]) => ({ kernelName, backendName, kernelFunc })),
  ];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, backendName) !== undefined) tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel(config);
  }
  installed.add(backendName);
  return true;
}

/** Whether the fused kernels run on the active backend (lm/ops.ts then uses them): wasm or cpu with the
 *  addon, or cuda, whose backend (kernels/cuda/backend.ts) registers them with its own kernels. */
export function fusedKernelsActive(): boolean {
  if (process.env.RINGLET_FUSED === '0') return false;
  const name = tf.getBackend();
  if (name === 'cuda') return tf.getKernel(KERNELS.rmsNorm, 'cuda') !== undefined;
  return (name === 'wasm' || name === 'cpu') && installed.has(name);
}

/** Whether the active backend keeps tensors in host memory where the native addon reads them (wasm, cpu). */
export function nativeBackendActive(): boolean {
  const name = tf.getBackend();
  return (name === 'wasm' || name === 'cpu') && installed.has(name);
}

// ---- Reading and writing tensors where the backend keeps them.

interface Io {
  /** Allocates outputs, then calls fn with views of inputs and outputs (taken after every allocation:
   *  growing the wasm heap detaches earlier views). */
  run(
    backend: unknown,
    inputs: TensorInfo[],
    outputs: Array<[number[], 'float32']>,
    fn: (ins: Arr[], outs: Float32Array[]) => void,
  ): TensorInfo[];
}

const wasmIo: Io = {
  run(backend, inputs, outputs, fn) {
    const wasm = backend as BackendWasm;
    const outs = outputs.map(([shape, dtype]) => wasm.makeOutput(shape, dtype));
    try {
      fn(
        inputs.map((t) => wasm.typedArrayFromHeap(t) as Arr),
        outs.map((t) => wasm.typedArrayFromHeap(t) as Float32Array),
      );
    } catch (err) {
      for (const t of outs) wasm.disposeData(t.dataId);
      throw err;
    }
    return outs;
  },
};

const cpuIo: Io = {
  run(backend, inputs, outputs, fn) {
    const cpu = backend as KernelBackend;
    const outArrays = outputs.map(([shape]) => new Float32Array(util.sizeFromShape(shape)));
    fn(
      inputs.map((t) => cpu.readSync(t.dataId) as Arr),
      outArrays,
    );
    return outputs.map(([shape, dtype], i) =>
      (backend as unknown as { makeTensorInfo(s: number[], d: string, v: Float32Array): TensorInfo }).makeTensorInfo(
        shape,
        dtype,
        outArrays[i],
      ),
    );
  },
};

const f32 = (a: Arr) => a as Float32Array;
const EMPTY = new Float32Array(0);

// ---- BatchMatMul through sgemm.

function batchMatMul(native: NativeKernels, io: Io, fallback: KernelConfig): KernelFunc {
  return (args) => {
    const plan = gemmPlan(args);
    if (!plan) return fallback.kernelFunc(args); // its own clear errors
    const { a, b, outShape, batch, m, n, k, transA, transB, strideA, strideB } = plan;
    const [out] = io.run(args.backend, [a, b], [[outShape, 'float32']], ([av, bv], [cv]) =>
      native.sgemm(f32(av), f32(bv), cv, batch, m, n, k, transA, transB, strideA, strideB),
    );
    return out;
  };
}

// ---- Fused kernels. Shapes are checked by lm/ops.ts; the addon re-checks every array's length.

function fusedKernels(native: NativeKernels, io: Io): Array<[string, KernelFunc]> {
  const t = (x: TensorInfo | TensorInfo[]) => x as TensorInfo;
  return [
    [
      KERNELS.rmsNorm,
      ({ inputs, backend, attrs }) => {
        const { x, g } = inputs as { x: TensorInfo; g: TensorInfo };
        const [rows, d] = x.shape;
        return io.run(
          backend,
          [x, g],
          [
            [x.shape, 'float32'],
            [[rows], 'float32'],
          ],
          ([xv, gv], [y, rstd]) => native.rmsnormFwd(f32(xv), f32(gv), y, rstd, rows, d, (attrs as { eps: number }).eps),
        );
      },
    ],
    [
      KERNELS.rmsNormGrad,
      ({ inputs, backend }) => {
        const { x, g, rstd, dy } = inputs as Record<string, TensorInfo>;
        const [rows, d] = x.shape;
        return io.run(
          backend,
          [x, g, rstd, dy],
          [
            [x.shape, 'float32'],
            [g.shape, 'float32'],
          ],
          ([xv, gv, rv, dyv], [dx, dg]) => native.rmsnormBwd(f32(xv), f32(gv), f32(rv), f32(dyv), dx, dg, rows, d),
        );
      },
    ],
    [
      KERNELS.swiglu,
      ({ inputs, backend }) => {
        const { a, b } = inputs as Record<string, TensorInfo>;
        return t(
          io.run(backend, [a, b], [[a.shape, 'float32']], ([av, bv], [y]) => native.swigluFwd(f32(av), f32(bv), y, y.length))[0],
        );
      },
    ],
    [
      KERNELS.swigluGrad,
      ({ inputs, backend }) => {
        const { a, b, dy } = inputs as Record<string, TensorInfo>;
        return io.run(
          backend,
          [a, b, dy],
          [
            [a.shape, 'float32'],
            [b.shape, 'float32'],
          ],
          ([av, bv, dyv], [da, db]) => native.swigluBwd(f32(av), f32(bv), f32(dyv), da, db, da.length),
        );
      },
    ],
    [
      KERNELS.rope,
      ({ inputs, backend, attrs }) => {
        const { x } = inputs as Record<string, TensorInfo>;
        const { T, heads, cos, sin, sign } = attrs as unknown as RopeAttrs;
        const [rows, width] = x.shape;
        return t(
          io.run(backend, [x], [[x.shape, 'float32']], ([xv], [y]) =>
            native.rope(f32(xv), y, cos, sin, rows, T, heads, width / heads, sign),
          )[0],
        );
      },
    ],
    [
      KERNELS.attention,
      ({ inputs, backend, attrs }) => {
        const { q, k, v } = inputs as Record<string, TensorInfo>;
        const { B, T, H, Hkv } = attrs as unknown as AttentionAttrs;
        const hd = q.shape[1] / H;
        return io.run(
          backend,
          [q, k, v],
          [
            [q.shape, 'float32'],
            [[B, H, T], 'float32'],
          ],
          ([qv, kv, vv], [o, lse]) => native.attnFwd(f32(qv), f32(kv), f32(vv), o, lse, B, T, H, Hkv, hd),
        );
      },
    ],
    [
      KERNELS.attentionGrad,
      ({ inputs, backend, attrs }) => {
        const { q, k, v, o, lse, dy } = inputs as Record<string, TensorInfo>;
        const { B, T, H, Hkv } = attrs as unknown as AttentionAttrs;
        const hd = q.shape[1] / H;
        return io.run(
          backend,
          [q, k, v, o, lse, dy],
          [
            [q.shape, 'float32'],
            [k.shape, 'float32'],
            [v.shape, 'float32'],
          ],
          ([qv, kv, vv, ov, lv, dyv], [dq, dk, dv]) =>
            native.attnBwd(f32(qv), f32(kv), f32(vv), f32(ov), f32(lv), f32(dyv), dq, dk, dv, B, T, H, Hkv, hd),
        );
      },
    ],
    [
      KERNELS.linearCrossEntropy,
      ({ inputs, backend, attrs }) => {
        const { h, w, targets } = inputs as Record<string, TensorInfo>;
        const { withGrad } = attrs as unknown as { withGrad: boolean };
        const [rows, d] = h.shape;
        const V = w.shape[0];
        const outputs: Array<[number[], 'float32']> = [[[rows], 'float32']];
        if (withGrad) outputs.push([h.shape, 'float32'], [w.shape, 'float32']);
        return io.run(backend, [h, w, targets], outputs, ([hv, wv, tv], [loss, dh, dw]) =>
          native.linearXent(f32(hv), f32(wv), tv as Int32Array, loss, dh ?? EMPTY, dw ?? EMPTY, rows, d, V, withGrad),
        );
      },
    ],
    [
      KERNELS.adamw,
      ({ inputs, backend, attrs }) => {
        const tensors = inputs as unknown as TensorInfo[]; // p, g, m, v of each parameter in turn
        const a = attrs as unknown as AdamWAttrs;
        const outputs = tensors.flatMap((t, i) =>
          i % 4 === 0 ? [t.shape, t.shape, t.shape].map((s) => [s, 'float32'] as [number[], 'float32']) : [],
        );
        return io.run(backend, tensors, outputs, (ins, outs) =>
          a.weightDecays.forEach((wd, i) => {
            const [p, g, m, v] = ins.slice(4 * i, 4 * i + 4).map(f32);
            const [po, mo, vo] = outs.slice(3 * i, 3 * i + 3);
            native.adamw(
              p,
              g,
              m,
              v,
              po,
              mo,
              vo,
              po.length,
              a.lr,
              a.beta1,
              a.beta2,
              a.eps,
              wd,
              a.correction1,
              a.correction2,
              a.gradScale,
            );
          }),
        );
      },
    ],
  ];
}

/** RingletRope's attributes: sequence length, heads, the cos/sin tables [T, hd/2], and +1 (forward) or -1 (its gradient). */
export interface RopeAttrs {
  T: number;
  heads: number;
  cos: Float32Array;
  sin: Float32Array;
  sign: number;
}

/** RingletAttention's and RingletAttentionGrad's attributes: batch, sequence length, query heads and key/value heads. */
export interface AttentionAttrs {
  B: number;
  T: number;
  H: number;
  Hkv: number;
}

/** RingletAdamW's attributes: one step's scalars, and each parameter's weight decay in input order. */
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecays: number[];
  correction1: number;
  correction2: number;
  gradScale: number;
}
