// The model's fusable operations, in one place: each runs Ringlet's fused native kernel (kernels/native,
// registered for the wasm and cpu backends by kernels/native-kernels.ts) through tf.customGrad when the
// addon is loaded on the active backend, and the plain TensorFlow.js composition otherwise (no addon,
// tfjs-node(-gpu), or RINGLET_FUSED=0). Both ways compute the same function; test/kernels-*.test.ts
// checks them against each other and against float64 references.
import * as tf from '@tensorflow/tfjs';
import { KERNELS, fusedKernelsActive, type AdamWAttrs } from '../kernels/native-kernels.js';

export { fusedKernelsActive };

type Saved = tf.Tensor[];
const run = (name: string, inputs: tf.NamedTensorMap, attrs: object = {}) =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
const runMany = (name: string, inputs: tf.NamedTensorMap, attrs: object = {}) => run(name, inputs, attrs) as tf.Tensor[];

// ---- RMSNorm over the last axis of [rows, d], times a gain [d].

export function rmsNorm(x: tf.Tensor2D, gain: tf.Tensor, eps: number): tf.Tensor2D {
  if (!fusedKernelsActive()) return plainRmsNorm(x, gain, eps);
  const op = tf.customGrad((xIn, gIn, save) => {
    const [y, rstd] = runMany(KERNELS.rmsNorm, { x: xIn as tf.Tensor, g: gIn as tf.Tensor }, { eps });
    (save as tf.GradSaveFunc)([xIn as tf.Tensor, gIn as tf.Tensor, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [xs, gs, rs]: Saved) => runMany(KERNELS.rmsNormGrad, { x: xs, g: gs, rstd: rs, dy }),
    };
  });
  return op(x, gain) as tf.Tensor2D;
}

export function plainRmsNorm(x: tf.Tensor2D, gain: tf.Tensor, eps: number): tf.Tensor2D {
  return x.mul(tf.rsqrt(x.square().mean(-1, true).add(eps))).mul(gain);
}

// ---- SwiGLU's gate and the down projection: (silu(gate)·up)·w_down. Fused, the gated product is not kept
// for the backward pass (which would hold a [rows, ffn_hidden] tensor per layer until then): the backward
// recomputes it from gate and up, an elementwise pass, to form w_down's gradient.

export function swigluDown(gate: tf.Tensor2D, up: tf.Tensor2D, wDown: tf.Tensor2D): tf.Tensor2D {
  if (!fusedKernelsActive()) return tf.matMul(plainSwigluGate(gate, up), wDown);
  const swiglu = (a: tf.Tensor, b: tf.Tensor) => run(KERNELS.swiglu, { a, b }) as tf.Tensor2D;
  const op = tf.customGrad((a, b, w, save) => {
    (save as tf.GradSaveFunc)([a as tf.Tensor, b as tf.Tensor, w as tf.Tensor]);
    const gated = swiglu(a as tf.Tensor, b as tf.Tensor);
    const value = tf.matMul(gated, w as tf.Tensor2D);
    gated.dispose();
    return {
      value,
      gradFunc: (dy: tf.Tensor, [as, bs, ws]: Saved) => {
        const gated = swiglu(as, bs);
        const dw = tf.matMul(gated, dy as tf.Tensor2D, true, false);
        gated.dispose();
        const [da, db] = runMany(KERNELS.swigluGrad, {
          a: as,
          b: bs,
          dy: tf.matMul(dy as tf.Tensor2D, ws as tf.Tensor2D, false, true),
        });
        return [da, db, dw];
      },
    };
  });
  return op(gate, up, wDown) as tf.Tensor2D;
}

export function plainSwigluGate(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  return gate.mul(tf.sigmoid(gate)).mul<tf.Tensor2D>(up);
}

// ---- The residual stream's addition of two same-shaped tensors. tf.add saves both operands for its
// backward pass only to read their shapes (for broadcasting); with equal shapes the gradient is dy for
// both, so the fused path saves nothing and the branch outputs can go as soon as the forward pass is done.

export function residualAdd(x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
  if (!fusedKernelsActive()) return x.add(y);
  if (!tf.util.arraysEqual(x.shape, y.shape)) throw new Error(`residualAdd: shapes [${x.shape}] and [${y.shape}] differ`);
  const op = tf.customGrad((a, b) => ({
    value: tf.add(a as tf.Tensor, b as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => [dy, dy],
  }));
  return op(x, y) as tf.Tensor2D;
}

// ---- Rotary position embeddings on [B·T, heads·hd] (each head's two halves rotate, as in Llama's
// reference code); row r is at position start + r mod T.

const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array }>();

/** cos and sin of position·θ^(−i/half) for positions start..start+T−1, [T, half] row-major, float32. */
export function ropeTables(theta: number, hd: number, start: number, T: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${theta}/${hd}/${start}/${T}`;
  let tables = ropeCache.get(key);
  if (!tables) {
    const half = hd / 2;
    const cos = new Float32Array(T * half);
    const sin = new Float32Array(T * half);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < half; i++) {
        const angle = (start + t) * Math.pow(theta, -i / half);
        cos[t * half + i] = Math.cos(angle);
        sin[t * half + i] = Math.sin(angle);
      }
    tables = { cos, sin };
    if (ropeCache.size > 64) ropeCache.clear();
    ropeCache.set(key, tables);
  }
  return tables;
}

/** RoPE through the fused kernel (the caller has checked fusedAttentionActive()). */
export function fusedRope(x: tf.Tensor2D, T: number, heads: number, theta: number, start = 0): tf.Tensor2D {
  const hd = x.shape[1] / heads;
  if (!Number.isInteger(hd) || hd % 2 !== 0)
    throw new Error(`rope: width ${x.shape[1]} is not heads (${heads}) × an even head size`);
  if (x.shape[0] % T !== 0) throw new Error(`rope: ${x.shape[0]} rows are not a whole number of sequences of ${T}`);
  const { cos, sin } = ropeTables(theta, hd, start, T);
  const attrs = { T, heads, cos, sin };
  const op = tf.customGrad((xIn) => ({
    value: run(KERNELS.rope, { x: xIn as tf.Tensor }, { ...attrs, sign: 1 }) as tf.Tensor,
    // The rotation is orthogonal: its gradient rotates back.
    gradFunc: (dy: tf.Tensor) => run(KERNELS.rope, { x: dy }, { ...attrs, sign: -1 }) as tf.Tensor,
  }));
  return op(x) as tf.Tensor2D;
}

// ---- Causal self-attention on projections q [B·T, H·hd], k and v [B·T, Hkv·hd]: softmax(q·kᵀ/√hd + causal
// mask)·v per head, query head h reading kv head h/(H/Hkv). Returns [B·T, H·hd].

export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  Hkv: number;
}

/**
 * Whether attention runs as the fused kernels (RoPE, then flash attention); RINGLET_ATTENTION=plain makes it the
 * TensorFlow.js composition (lm/model.ts) on any backend, which on cuda puts the products on cuBLAS: the GPU check
 * measures both (bench/gpu/check.ts).
 */
export function fusedAttentionActive(): boolean {
  return fusedKernelsActive() && process.env.RINGLET_ATTENTION !== 'plain';
}

/** Flash-style causal attention through the fused kernel (the caller has checked fusedAttentionActive()). */
export function fusedCausalAttention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, dims: AttentionDims): tf.Tensor2D {
  const { B, T, H, Hkv } = dims;
  const hd = q.shape[1] / H;
  if (q.shape[0] !== B * T || k.shape[0] !== B * T || v.shape[0] !== B * T)
    throw new Error(`attention: q, k, v need ${B}·${T} rows, got ${q.shape[0]}, ${k.shape[0]}, ${v.shape[0]}`);
  if (!Number.isInteger(hd) || H % Hkv !== 0 || k.shape[1] !== Hkv * hd || v.shape[1] !== Hkv * hd)
    throw new Error(`attention: widths q ${q.shape[1]}, k ${k.shape[1]}, v ${v.shape[1]} do not fit ${H} heads, ${Hkv} kv heads`);
  const op = tf.customGrad((qIn, kIn, vIn, save) => {
    const [o, lse] = runMany(KERNELS.attention, { q: qIn as tf.Tensor, k: kIn as tf.Tensor, v: vIn as tf.Tensor }, dims);
    (save as tf.GradSaveFunc)([qIn as tf.Tensor, kIn as tf.Tensor, vIn as tf.Tensor, o, lse]);
    return {
      value: o,
      gradFunc: (dy: tf.Tensor, [qs, ks, vs, os, ls]: Saved) =>
        runMany(KERNELS.attentionGrad, { q: qs, k: ks, v: vs, o: os, lse: ls, dy }, dims),
    };
  });
  return op(q, k, v) as tf.Tensor2D;
}

/** Attention for training (no KV cache): RoPE on q and k, then causal attention, fused when possible. */
export function fusedSelfAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  dims: AttentionDims,
  ropeTheta: number,
): tf.Tensor2D {
  return fusedCausalAttention(fusedRope(q, dims.T, dims.H, ropeTheta), fusedRope(k, dims.T, dims.Hkv, ropeTheta), v, dims);
}

// ---- Mean softmax cross-entropy of the output projection h·wᵀ (h [rows, d], w [V, d]) against int32
// targets [rows], in nats. Fused, the [rows, V] logits never exist whole (kernels/native addon.cc
// LinearXent), and under a gradient tape the gradients of h and w come out of the same pass, since the
// loss is the last operation; outside one (evaluation) only the loss is computed.

export function linearCrossEntropy(h: tf.Tensor2D, w: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (!fusedKernelsActive()) return plainCrossEntropy(tf.matMul(h, w, false, true), targets);
  if (!gradientsBeingTaken())
    return tf.tidy(() => runMany(KERNELS.linearCrossEntropy, { h, w, targets }, { withGrad: false })[0].mean() as tf.Scalar);
  const op = tf.customGrad((hIn, wIn, tIn, save) => {
    const [loss, dh, dw] = runMany(
      KERNELS.linearCrossEntropy,
      { h: hIn as tf.Tensor, w: wIn as tf.Tensor, targets: tIn as tf.Tensor },
      { withGrad: true },
    );
    (save as tf.GradSaveFunc)([dh, dw]);
    return {
      value: loss.mean() as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [dhs, dws]: Saved) => [dhs.mul(dy), dws.mul(dy), tf.zeros((tIn as tf.Tensor).shape)],
    };
  });
  return op(h, w, targets) as tf.Scalar;
}

/** Whether a gradient tape is recording (tf.variableGrads and friends run their function under one). */
function gradientsBeingTaken(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

/**
 * The plain composition: −log softmax(logits)[target], built on logSoftmax, whose gradient is one fused
 * expression (logSumExp's goes through max() and an elementwise Equal over the whole logits).
 */
export function plainCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [rows, vocab] = logits.shape;
  const flatIndex = tf.range(0, rows, 1, 'int32').mul(tf.scalar(vocab, 'int32')).add(targets);
  return tf
    .gather(tf.logSoftmax(logits).reshape([rows * vocab]), flatIndex)
    .mean()
    .neg() as tf.Scalar;
}

// ---- AdamW: one fused update of every parameter and its two moments (one launch on cuda), or null on the
// plain path.

export interface AdamWTensors {
  p: tf.Tensor;
  g: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  weightDecay: number;
}

/** The updated [p, m, v] of each tensor group, in order. */
export function fusedAdamW(
  groups: AdamWTensors[],
  attrs: Omit<AdamWAttrs, 'weightDecays'>,
): Array<[tf.Tensor, tf.Tensor, tf.Tensor]> | null {
  if (!fusedKernelsActive()) return null;
  const inputs = groups.flatMap(({ p, g, m, v }) => [p, g, m, v]) as unknown as tf.NamedTensorMap; // a list, as Concat's
  const outs = runMany(KERNELS.adamw, inputs, { ...attrs, weightDecays: groups.map((t) => t.weightDecay) });
  return groups.map((_, i) => [outs[3 * i], outs[3 * i + 1], outs[3 * i + 2]]);
}
