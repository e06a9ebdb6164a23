// A Llama-style decoder in TensorFlow.js: token embedding tied to the output head, RMSNorm, rotary
// position embeddings, causal (grouped-query) attention and a SwiGLU MLP (or a mixture of SwiGLU experts,
// lm/moe.ts), with no biases.
// The parameters are a plain map of named variables; training, checkpoints and the ring all-reduce
// see them as named buffers and nothing here knows about them.
import * as tf from '@tensorflow/tfjs';
import { parameterShapes, type ModelConfig, type MoeConfig } from './model-config.js';
import { mixtureOfExperts, newRouting, type Routing } from './moe.js';
import { Rng } from './rng.js';
import * as ops from './ops.js';

export type Params = Map<string, tf.Variable>;

/** Keys and values of earlier positions, one [1, n_kv_heads, length, head_dim] pair per layer. */
export interface KvCache {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
  length: number;
}

/**
 * Normal(0, 0.02) for matrices, ones for norm gains. The projections that write into the residual stream
 * (wo, w_down) get 0.02/sqrt(2·n_layers), as in GPT-2, so the stream's variance does not grow with depth.
 * Drawn in JavaScript from a seeded generator, so every backend starts from the same weights.
 */
export function initParams(c: ModelConfig, seed: number): Params {
  const rng = new Rng(seed);
  const residualStd = 0.02 / Math.sqrt(2 * c.n_layers);
  const params: Params = new Map();
  for (const [name, shape] of parameterShapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (shape.length === 1) data.fill(1);
    else {
      const std = name.endsWith('.wo') || name.endsWith('.w_down') ? residualStd : 0.02;
      for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
    }
    // Unnamed variables: tfjs names must be unique per process, and a process may hold several models.
    params.set(
      name,
      tf.tidy(() => tf.variable(tf.tensor(data, shape), true)),
    );
  }
  return params;
}

/** Parameters from stored buffers (a checkpoint), checking that every tensor is present with its shape. */
export function paramsFromTensors(c: ModelConfig, tensors: Map<string, { shape: number[]; data: Float32Array }>): Params {
  const params: Params = new Map();
  for (const [name, shape] of parameterShapes(c)) {
    const t = tensors.get(name);
    if (!t) throw new Error(`weights have no tensor "${name}"`);
    if (t.shape.join() !== shape.join()) throw new Error(`weight "${name}" has shape [${t.shape}], the model needs [${shape}]`);
    params.set(
      name,
      tf.tidy(() => tf.variable(tf.tensor(t.data, shape), true)),
    );
  }
  return params;
}

function linear(x: tf.Tensor2D, w: tf.Variable): tf.Tensor2D {
  return tf.matMul(x, w as tf.Variable<tf.Rank.R2>);
}

function rmsNorm(x: tf.Tensor2D, gain: tf.Tensor, eps: number): tf.Tensor2D {
  return ops.rmsNorm(x, gain, eps); // fused when the native kernels are active (lm/ops.ts)
}

/** cos and sin of position·θ_i for positions start..start+T-1 as tensors, each [T, head_dim/2] (lm/ops.ts computes and caches them). */
function ropeTensors(c: ModelConfig, start: number, T: number): [tf.Tensor2D, tf.Tensor2D] {
  const headDim = c.d_model / c.n_heads;
  const { cos, sin } = ops.ropeTables(c.rope_theta, headDim, start, T);
  return [tf.tensor2d(cos, [T, headDim / 2]), tf.tensor2d(sin, [T, headDim / 2])];
}

/** Rotates the two halves of each head's vector ([B, H, T, head_dim]), as Llama's reference code does. */
function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const [x1, x2] = tf.split(x, 2, 3);
  return tf.concat([x1.mul(cos).sub(x2.mul(sin)), x1.mul(sin).add(x2.mul(cos))], 3) as tf.Tensor4D;
}

/** Additive mask [rows·T, S]: query i (at position start+i) sees keys 0..start+i. Repeated for each query row group. */
function causalMask(start: number, T: number, rows: number): tf.Tensor2D {
  const S = start + T;
  const mask = new Float32Array(rows * T * S);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < T; i++) mask.fill(-1e9, (r * T + i) * S + start + i + 1, (r * T + i + 1) * S);
  return tf.tensor2d(mask, [rows * T, S]);
}

/** [B·T, heads·head_dim] → [B, heads, T, head_dim] */
function splitHeads(x: tf.Tensor2D, B: number, T: number, heads: number): tf.Tensor4D {
  return x.reshape([B, T, heads, -1]).transpose([0, 2, 1, 3]);
}

/** What the plain attention path needs at every layer, built once per forward pass. */
interface PlainAttentionTables {
  rope: [tf.Tensor2D, tf.Tensor2D];
  mask: tf.Tensor2D;
}

function attention(
  p: (name: string) => tf.Variable,
  l: number,
  x: tf.Tensor2D,
  c: ModelConfig,
  B: number,
  T: number,
  start: number,
  cache: KvCache | undefined,
  plain: PlainAttentionTables | null, // null when the fused kernel runs
): tf.Tensor2D {
  if (!plain) {
    const dims = { B, T, H: c.n_heads, Hkv: c.n_kv_heads };
    const [q, k, v] = (['wq', 'wk', 'wv'] as const).map((w) => linear(x, p(`layers.${l}.${w}`)));
    return linear(ops.fusedSelfAttention(q, k, v, dims, c.rope_theta), p(`layers.${l}.wo`));
  }
  const headDim = c.d_model / c.n_heads;
  const group = c.n_heads / c.n_kv_heads; // query heads that share one key/value head
  const [cos, sin] = plain.rope;
  const q = applyRope(splitHeads(linear(x, p(`layers.${l}.wq`)), B, T, c.n_heads), cos, sin);
  let k = applyRope(splitHeads(linear(x, p(`layers.${l}.wk`)), B, T, c.n_kv_heads), cos, sin);
  let v = splitHeads(linear(x, p(`layers.${l}.wv`)), B, T, c.n_kv_heads);
  if (cache) {
    if (cache.length > 0) {
      k = tf.concat([cache.k[l], k], 2);
      v = tf.concat([cache.v[l], v], 2);
    }
    cache.k[l] = tf.keep(k);
    cache.v[l] = tf.keep(v);
  }
  // Grouped-query attention without copying keys: stack each group's query heads along the time axis.
  const qGrouped = q.reshape([B, c.n_kv_heads, group * T, headDim]);
  const scores = tf
    .matMul(qGrouped, k, false, true)
    .mul(1 / Math.sqrt(headDim))
    .add(plain.mask);
  const out = tf.matMul(tf.softmax(scores), v).reshape([B, c.n_heads, T, headDim]);
  return linear(out.transpose([0, 2, 1, 3]).reshape([B * T, c.d_model]), p(`layers.${l}.wo`));
}

/** The SwiGLU MLP whose weights are `${prefix}w_gate`, `w_up` and `w_down`: a dense layer's, or an expert's. */
function swiglu(p: (name: string) => tf.Variable, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  const gate = linear(x, p(`${prefix}w_gate`));
  const up = linear(x, p(`${prefix}w_up`));
  return ops.swigluDown(gate, up, p(`${prefix}w_down`) as tf.Tensor as tf.Tensor2D);
}

/** A mixture-of-experts block's output (lm/moe.ts) added to the residual; the layer's loss goes to `routing`. */
function moeBlock(
  p: (name: string) => tf.Variable,
  l: number,
  mid: tf.Tensor2D,
  c: ModelConfig & { moe: MoeConfig },
  routing: Routing | undefined,
): tf.Tensor2D {
  const [next, loss] = tf.tidy(() => {
    const normed = rmsNorm(mid, p(`layers.${l}.mlp_norm`), c.norm_eps);
    const router = p(`layers.${l}.router`) as tf.Tensor as tf.Tensor2D;
    const expert = (e: number, rows: tf.Tensor2D) => swiglu(p, `layers.${l}.experts.${e}.`, rows);
    const { out, loss } = mixtureOfExperts(normed, router, c.moe, expert, routing);
    const next = ops.residualAdd(mid, out);
    return loss ? [next, loss] : [next];
  });
  if (loss) routing!.losses.push(loss as tf.Scalar);
  return next as tf.Tensor2D;
}

/**
 * The final normalised hidden states [B·T, d] for tokens [B, T] (or only the last position's, [B, d], with
 * lastOnly). With a cache, the tokens continue the cached sequence and their keys and values are appended
 * to it; the caller owns the cache's tensors and disposes the ones it replaces. With experts, `routing`
 * takes each layer's routing (lm/moe.ts).
 */
export function hidden(
  params: Params,
  c: ModelConfig,
  tokens: tf.Tensor2D,
  options: { cache?: KvCache; lastOnly?: boolean; routing?: Routing } = {},
): tf.Tensor2D {
  const p = (name: string) => params.get(name)!;
  const [B, T] = tokens.shape;
  const start = options.cache?.length ?? 0;
  const plain =
    !options.cache && ops.fusedAttentionActive()
      ? null
      : { rope: ropeTensors(c, start, T), mask: causalMask(start, T, c.n_heads / c.n_kv_heads) };
  let x = tf.gather(p('tok_embedding'), tokens.reshape([B * T])) as tf.Tensor2D;
  // Each block in its own tidy: what the backward pass needs, it has saved (as clones), so the rest of a
  // block (projections, branch outputs) goes at once instead of living until the whole forward pass ends
  // (for the 8.5M preset, ~130 MB of a step's peak).
  for (let l = 0; l < c.n_layers; l++) {
    const residual = x;
    const mid = tf.tidy(() =>
      ops.residualAdd(
        residual,
        attention(p, l, rmsNorm(residual, p(`layers.${l}.attn_norm`), c.norm_eps), c, B, T, start, options.cache, plain),
      ),
    );
    x = c.moe
      ? moeBlock(p, l, mid, c as ModelConfig & { moe: MoeConfig }, options.routing)
      : tf.tidy(() => ops.residualAdd(mid, swiglu(p, `layers.${l}.`, rmsNorm(mid, p(`layers.${l}.mlp_norm`), c.norm_eps))));
  }
  if (options.cache) options.cache.length = start + T;
  if (options.lastOnly)
    x = x
      .reshape([B, T, c.d_model])
      .slice([0, T - 1, 0], [B, 1, c.d_model])
      .reshape([B, c.d_model]);
  return rmsNorm(x, p('final_norm'), c.norm_eps);
}

/** Logits [B·T, vocab] (or [B, vocab] with lastOnly): the hidden states through the tied embedding. */
export function forward(
  params: Params,
  c: ModelConfig,
  tokens: tf.Tensor2D,
  options: { cache?: KvCache; lastOnly?: boolean; routing?: Routing } = {},
): tf.Tensor2D {
  return tf.matMul(hidden(params, c, tokens, options), params.get('tok_embedding')!, false, true);
}

/**
 * Mean next-token cross-entropy in nats for a batch, what every loss figure reports: inputs and targets
 * are [B, T] int32, targets shifted by one. The output projection and the loss are one operation
 * (lm/ops.ts), so the fused path never holds the whole [B·T, vocab] logits. With experts, `routing` takes
 * each layer's routing.
 */
export function lossOn(
  params: Params,
  c: ModelConfig,
  inputs: tf.Tensor2D,
  targets: tf.Tensor2D,
  routing?: Routing,
): tf.Scalar {
  const embedding = params.get('tok_embedding')! as tf.Tensor as tf.Tensor2D;
  return ops.linearCrossEntropy(hidden(params, c, inputs, { routing }), embedding, targets.reshape([-1]) as tf.Tensor1D);
}

/**
 * What training minimises, and the cross-entropy it reports. Dense, both are the same tensor (lossOn's).
 * With experts, the objective adds the routers' auxiliary losses, averaged over the layers (so α and β
 * mean the same at any depth), and assignments over capacity are dropped.
 */
export function objectiveOn(
  params: Params,
  c: ModelConfig,
  inputs: tf.Tensor2D,
  targets: tf.Tensor2D,
): { objective: tf.Scalar; crossEntropy: tf.Scalar } {
  if (!c.moe) {
    const crossEntropy = lossOn(params, c, inputs, targets);
    return { objective: crossEntropy, crossEntropy };
  }
  const routing = newRouting(true);
  const crossEntropy = lossOn(params, c, inputs, targets, routing);
  const objective = crossEntropy.add(tf.addN(routing.losses).div(c.n_layers)) as tf.Scalar;
  return { objective, crossEntropy };
}
