// BatchMatMul and Ringlet's fused kernels (kernels/native-kernels.ts KERNELS) on the cuda backend: each is
// one call of the device's gemm or fused kernel, with the same arguments kernels/native-kernels.ts gives
// the native addon, so the host device (kernels/cuda/host-device.ts) reproduces the wasm path's bits.
import * as tf from '@tensorflow/tfjs';
import { util } from '@tensorflow/tfjs';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { gemmPlan } from '../matmul-shape.js';
import { KERNELS, type AdamWAttrs, type AttentionAttrs, type RopeAttrs } from '../native-kernels.js';
import type { CudaBackend } from './backend.js';
import type { DevicePtr } from './device.js';
import { cudaKernel, type CudaKernelArgs } from './cuda-kernel.js';
import { runOnCpu } from './fallback.js';

/** Allocates float32 outputs of `shapes` and runs `fn` on their buffers; with no work, the outputs are zeros. */
function launch(backend: CudaBackend, shapes: number[][], work: number, fn: (outs: DevicePtr[]) => void): TensorInfo[] {
  const outs = shapes.map((shape) => backend.makeTensorInfo(shape, 'float32'));
  if (work > 0) fn(outs.map((t) => backend.ptr(t)));
  else
    for (const t of outs) {
      const n = util.sizeFromShape(t.shape);
      if (n > 0) backend.device.fill(backend.ptr(t), 'float32', 0, n);
    }
  return outs;
}

const batchMatMul = cudaKernel(tf.BatchMatMul, (args) => {
  const { backend } = args;
  const plan = gemmPlan(args);
  if (!plan) return runOnCpu(tf.BatchMatMul, args);
  const { a, b, outShape, batch, m, n, k, transA, transB, strideA, strideB } = plan;
  const [out] = launch(backend, [outShape], batch * m * n * k, ([c]) =>
    backend.device.gemm(backend.ptr(a), backend.ptr(b), c, batch, m, n, k, transA, transB, strideA, strideB, m * n),
  );
  return out;
});

type Fused = (args: CudaKernelArgs, p: (t: TensorInfo) => DevicePtr) => TensorInfo | TensorInfo[];

function fused(kernelName: string, fn: Fused): KernelConfig {
  return cudaKernel(kernelName, (args) => fn(args, (t) => args.backend.ptr(t)));
}

const FUSED_KERNELS: KernelConfig[] = [
  fused(KERNELS.rmsNorm, ({ inputs, backend, attrs }, p) => {
    const { x, g } = inputs as { x: TensorInfo; g: TensorInfo };
    const [rows, d] = x.shape;
    return launch(backend, [x.shape, [rows]], rows * d, ([y, rstd]) =>
      backend.device.rmsnormFwd(p(x), p(g), y, rstd, rows, d, (attrs as unknown as { eps: number }).eps),
    );
  }),
  fused(KERNELS.rmsNormGrad, ({ inputs, backend }, p) => {
    const { x, g, rstd, dy } = inputs as Record<string, TensorInfo>;
    const [rows, d] = x.shape;
    return launch(backend, [x.shape, g.shape], rows * d, ([dx, dg]) =>
      backend.device.rmsnormBwd(p(x), p(g), p(rstd), p(dy), dx, dg, rows, d),
    );
  }),
  fused(KERNELS.swiglu, ({ inputs, backend }, p) => {
    const { a, b } = inputs as Record<string, TensorInfo>;
    const n = util.sizeFromShape(a.shape);
    return launch(backend, [a.shape], n, ([y]) => backend.device.swigluFwd(p(a), p(b), y, n))[0];
  }),
  fused(KERNELS.swigluGrad, ({ inputs, backend }, p) => {
    const { a, b, dy } = inputs as Record<string, TensorInfo>;
    const n = util.sizeFromShape(a.shape);
    return launch(backend, [a.shape, b.shape], n, ([da, db]) => backend.device.swigluBwd(p(a), p(b), p(dy), da, db, n));
  }),
  fused(KERNELS.rope, ({ inputs, backend, attrs }, p) => {
    const { x } = inputs as Record<string, TensorInfo>;
    const { T, heads, cos, sin, sign } = attrs as unknown as RopeAttrs;
    const [rows, width] = x.shape;
    return launch(backend, [x.shape], rows * width, ([y]) =>
      backend.device.rope(p(x), y, backend.constant(cos), backend.constant(sin), rows, T, heads, width / heads, sign),
    )[0];
  }),
  fused(KERNELS.attention, ({ inputs, backend, attrs }, p) => {
    const { q, k, v } = inputs as Record<string, TensorInfo>;
    const { B, T, H, Hkv } = attrs as unknown as AttentionAttrs;
    const hd = q.shape[1] / H;
    return launch(backend, [q.shape, [B, H, T]], B * T * H * hd, ([o, lse]) =>
      backend.device.attnFwd(p(q), p(k), p(v), o, lse, B, T, H, Hkv, hd),
    );
  }),
  fused(KERNELS.attentionGrad, ({ inputs, backend, attrs }, p) => {
    const { q, k, v, o, lse, dy } = inputs as Record<string, TensorInfo>;
    const { B, T, H, Hkv } = attrs as unknown as AttentionAttrs;
    const hd = q.shape[1] / H;
    return launch(backend, [q.shape, k.shape, v.shape], B * T * H * hd, ([dq, dk, dv]) =>
      backend.device.attnBwd(p(q), p(k), p(v), p(o), p(lse), p(dy), dq, dk, dv, B, T, H, Hkv, hd),
    );
  }),
  fused(KERNELS.linearCrossEntropy, ({ inputs, backend, attrs }, p) => {
    const { h, w, targets } = inputs as Record<string, TensorInfo>;
    const { withGrad } = attrs as unknown as { withGrad: boolean };
    const [rows, d] = h.shape;
    const V = w.shape[0];
    const shapes = withGrad ? [[rows], h.shape, w.shape] : [[rows]];
    return launch(backend, shapes, rows * d * V, ([loss, dh, dw]) =>
      backend.device.linearXent(p(h), p(w), p(targets), loss, dh ?? 0, dw ?? 0, rows, d, V, withGrad),
    );
  }),
  // Every parameter in one launch (multi-tensor AdamW).
  fused(KERNELS.adamw, ({ inputs, backend, attrs }, p) => {
    const tensors = inputs as unknown as TensorInfo[]; // p, g, m, v of each parameter in turn
    const a = attrs as unknown as AdamWAttrs;
    const shapes = a.weightDecays.flatMap((_, i) => [tensors[4 * i].shape, tensors[4 * i].shape, tensors[4 * i].shape]);
    const sizes = a.weightDecays.map((_, i) => util.sizeFromShape(tensors[4 * i].shape));
    return launch(backend, shapes, Math.max(0, ...sizes), (outs) =>
      backend.device.adamw(
        a.weightDecays.flatMap((wd, i) => {
          const [param, g, m, v] = tensors.slice(4 * i, 4 * i + 4).map(p);
          const [pOut, mOut, vOut] = outs.slice(3 * i, 3 * i + 3);
          return sizes[i] > 0 ? [{ p: param, g, m, v, pOut, mOut, vOut, n: sizes[i], wd }] : [];
        }),
        a.lr,
        a.beta1,
        a.beta2,
        a.eps,
        a.correction1,
        a.correction2,
        a.gradScale,
      ),
    );
  }),
];

export const MATMUL_AND_FUSED_KERNELS: KernelConfig[] = [batchMatMul, ...FUSED_KERNELS];
