// A layer's mixture of experts, in place of the dense SwiGLU MLP (Switch Transformer, Fedus et al. 2021;
// the router z-loss of ST-MoE, Zoph et al. 2022). A router [d, E] scores the experts for each token; each
// token goes to its top_k experts, each expert (a whole SwiGLU of width ffn_hidden) runs on its own tokens
// only, and its outputs, scaled by the gates, are summed back into the tokens' rows.
// - Gates: with top_k 1 the router probability of the chosen expert (Switch); with top_k 2 the two chosen
//   probabilities renormalised to sum to 1 (as Mixtral). The choice itself is made on the host from the
//   probabilities read back (it is not differentiable); the gates are.
// - Capacity, in training only: an expert takes at most ceil(capacity_factor · tokens · top_k / E) of a
//   micro-batch's assignments, every token's first choice before any second choice, each in token order; a
//   dropped assignment adds nothing (the residual stream carries the token past the layer). With
//   capacity_factor 0 nothing is dropped. Evaluation, scoring and generation compute every assignment, so
//   a token's output never depends on the other sequences in its batch.
// - Losses (training): Switch's load balancing α·E·Σ_e f_e·P_e, f_e the share of the tokens·top_k
//   assignments (before capacity) that chose e and P_e the mean router probability of e, which is α when
//   routing is uniform; and the z-loss β·mean over tokens of logsumexp(router logits)².
import * as tf from '@tensorflow/tfjs';
import type { MoeConfig } from './model-config.js';

/** One layer's routing of a batch: assignments per expert (before capacity), and those over capacity. */
export interface LayerRouting {
  tokens: number[];
  /** Assignments over the training capacity (dropped in training; counted, not dropped, elsewhere). */
  dropped: number;
}

/**
 * What the MoE layers of one forward pass report, layer after layer. With `training`, assignments over
 * capacity are dropped and each layer adds its weighted auxiliary losses (α·balance + β·z) to `losses`.
 */
export interface Routing {
  training: boolean;
  layers: LayerRouting[];
  losses: tf.Scalar[];
}

export function newRouting(training: boolean): Routing {
  return { training, layers: [], losses: [] };
}

/** Routing over many tokens: assignments per expert per layer ([layer][expert]), and those over capacity in all layers. */
export interface RoutingCounts {
  tokens: number[][];
  dropped: number;
}

/** What a run's eval record holds: tokens per expert per layer, and the share of assignments over capacity. */
export function routingRecord(r: RoutingCounts): { tokens_per_expert: number[][]; dropped: number; dropped_share: number } {
  const assignments = r.tokens.flat().reduce((a, b) => a + b, 0);
  return { tokens_per_expert: r.tokens, dropped: r.dropped, dropped_share: assignments > 0 ? r.dropped / assignments : 0 };
}

/** One line for a log: each layer's shares per expert, and the dropped share. */
export function describeRouting(r: RoutingCounts): string {
  const layers = r.tokens.map((row, l) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return `layer ${l} ${row.map((n) => `${Math.round((100 * n) / Math.max(sum, 1))}`).join('/')}%`;
  });
  return `routing: ${layers.join(', ')}; over capacity ${(100 * routingRecord(r).dropped_share).toFixed(1)}%`;
}

/** Sums the layers' figures of forward passes (each pass reports its layers in order) per layer. */
export function routingCounts(layers: LayerRouting[], nLayers: number): RoutingCounts {
  const tokens = layers.slice(0, nLayers).map((r) => r.tokens.map(() => 0));
  let dropped = 0;
  layers.forEach((r, i) => {
    r.tokens.forEach((n, e) => (tokens[i % nLayers][e] += n));
    dropped += r.dropped;
  });
  return { tokens, dropped };
}

/** The top_k experts of each token by probability (ties to the lower index), [tokens·k], best first. */
export function topExperts(probs: ArrayLike<number>, tokens: number, experts: number, k: number): Int32Array {
  const chosen = new Int32Array(tokens * k);
  for (let t = 0; t < tokens; t++) {
    const row = t * experts;
    let first = 0;
    for (let e = 1; e < experts; e++) if (probs[row + e] > probs[row + first]) first = e;
    chosen[t * k] = first;
    if (k === 2) {
      let second = first === 0 ? 1 : 0;
      for (let e = 0; e < experts; e++) if (e !== first && probs[row + e] > probs[row + second]) second = e;
      chosen[t * k + 1] = second;
    }
  }
  return chosen;
}

/** Training capacity per expert for a batch of `tokens`; Infinity with capacity_factor 0. */
export function expertCapacity(m: MoeConfig, tokens: number): number {
  return m.capacity_factor === 0 ? Infinity : Math.ceil((m.capacity_factor * tokens * m.top_k) / m.experts);
}

/**
 * Each expert's assignments (index t·k + rank) in priority order, all first choices then all second
 * choices, each in token order: all of them (`queues`), and those within `capacity` (`kept`). Also the
 * counts before the cut and the assignments cut.
 */
export function dispatch(
  chosen: Int32Array,
  tokens: number,
  m: MoeConfig,
  capacity: number,
): { queues: number[][]; kept: number[][]; routing: LayerRouting } {
  const k = m.top_k;
  const queues: number[][] = Array.from({ length: m.experts }, () => []);
  for (let rank = 0; rank < k; rank++) for (let t = 0; t < tokens; t++) queues[chosen[t * k + rank]].push(t * k + rank);
  const kept = queues.map((q) => (q.length > capacity ? q.slice(0, capacity) : q));
  const dropped = queues.reduce((n, q) => n + q.length, 0) - kept.reduce((n, q) => n + q.length, 0);
  return { queues, kept, routing: { tokens: queues.map((q) => q.length), dropped } };
}

/** Switch's load-balancing loss α·E·Σ_e f_e·P_e (f: assignment shares, constants; probs [tokens, E]). */
export function balanceLoss(probs: tf.Tensor2D, tokensPerExpert: number[], alpha: number): tf.Scalar {
  const assignments = tokensPerExpert.reduce((a, b) => a + b, 0);
  const f = tf.tensor1d(tokensPerExpert.map((n) => n / assignments));
  return probs
    .mean(0)
    .mul(f)
    .sum()
    .mul(alpha * tokensPerExpert.length) as tf.Scalar;
}

/** ST-MoE's router z-loss β·mean(logsumexp(logits)²), which keeps the router's logits small. */
export function routerZLoss(logits: tf.Tensor2D, beta: number): tf.Scalar {
  return tf.logSumExp(logits, 1).square().mean().mul(beta) as tf.Scalar;
}

// Moving rows between the tokens and the experts. The wasm backend's Gather kernel indexes element by
// element (~10× a copy), and tf.unsortedSegmentSum's own gradient masks negative ids with a LogicalAnd and
// a Select over the whole gradient; together they took a third of an MoE step on wasm. Rows are copied on
// the host instead (the routing has read the probabilities back already, so nothing new waits), and each
// of the two operations is the other's gradient.

/** x's rows `rows` [rows.length, d], copied. */
function copyRows(x: tf.Tensor, rows: Int32Array): tf.Tensor2D {
  const d = x.shape[1]!;
  const source = x.dataSync() as Float32Array;
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(source.subarray(r * d, (r + 1) * d), i * d));
  return tf.tensor2d(out, [rows.length, d]);
}

/** out[i] = x[rows[i]]. */
function gatherRows(x: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const op = tf.customGrad((xIn) => ({
    value: copyRows(xIn as tf.Tensor, rows),
    gradFunc: (dy: tf.Tensor) => tf.unsortedSegmentSum(dy, tf.tensor1d(rows, 'int32'), x.shape[0]),
  }));
  return op(x) as tf.Tensor2D;
}

/** out[r] = Σ values[i] over the i with rows[i] = r, for r < tokens. */
function sumIntoRows(values: tf.Tensor2D, rows: Int32Array, tokens: number): tf.Tensor2D {
  const op = tf.customGrad((v) => ({
    value: tf.unsortedSegmentSum(v as tf.Tensor, tf.tensor1d(rows, 'int32'), tokens),
    gradFunc: (dy: tf.Tensor) => copyRows(dy, rows),
  }));
  return op(values) as tf.Tensor2D;
}

/**
 * The mixture's output [tokens, d] for normalised rows x [tokens, d]; `mlp(e, rows)` runs expert e's
 * SwiGLU on some rows. `routing`, when given, takes this layer's figures (and, training, its loss).
 */
export function mixtureOfExperts(
  x: tf.Tensor2D,
  router: tf.Tensor2D,
  m: MoeConfig,
  mlp: (expert: number, rows: tf.Tensor2D) => tf.Tensor2D,
  routing?: Routing,
): { out: tf.Tensor2D; loss: tf.Scalar | null } {
  const tokens = x.shape[0];
  const k = m.top_k;
  const logits = tf.matMul(x, router) as tf.Tensor2D;
  const probs = tf.softmax(logits) as tf.Tensor2D;
  const chosen = topExperts(probs.dataSync(), tokens, m.experts, k);
  const training = routing?.training ?? false;
  const { queues, kept, routing: figures } = dispatch(chosen, tokens, m, expertCapacity(m, tokens));
  const computed = training ? kept : queues;
  routing?.layers.push(figures);

  const picked = Int32Array.from(chosen, (e, a) => Math.floor(a / k) * m.experts + e);
  let gates = tf.gather(probs.reshape([tokens * m.experts]), picked);
  if (k === 2) {
    const pairs = gates.reshape([tokens, 2]);
    gates = pairs.div(pairs.sum(1, true)).reshape([tokens * 2]);
  }
  const outputs: tf.Tensor2D[] = [];
  const rows: number[] = [];
  computed.forEach((assignments, e) => {
    if (assignments.length === 0) return;
    const own = Int32Array.from(assignments, (a) => Math.floor(a / k));
    const gate = tf.gather(gates, Int32Array.from(assignments)).reshape([assignments.length, 1]);
    outputs.push(mlp(e, gatherRows(x, own)).mul<tf.Tensor2D>(gate));
    rows.push(...own);
  });
  const combined = outputs.length === 1 ? outputs[0] : tf.concat(outputs, 0);
  const out = sumIntoRows(combined, Int32Array.from(rows), tokens);
  const loss = training
    ? balanceLoss(probs, figures.tokens, m.aux_loss_weight).add<tf.Scalar>(routerZLoss(logits, m.z_loss_weight))
    : null;
  return { out, loss };
}
