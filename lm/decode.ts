// Generation's forward pass: inference only, on plain Float32Arrays through the native kernels
// (kernels/native). The weights are copied once out of the tf.Variables; each sequence has a key/value
// cache preallocated for the whole context and written in place; a call takes a batch of new positions
// (the prompt) or one, and returns the last position's logits. It computes the function of lm/model.ts
// `forward` (test/decode.test.ts holds them together) in 9 native calls a layer, where the
// TensorFlow.js graph runs hundreds of small operations, concatenates the whole cache and rebuilds a mask.
import { loadNative, type NativeKernels } from '../kernels/native.js';
import type { Params } from './model.js';
import type { ModelConfig } from './model-config.js';
import { ropeTables } from './ops.js';

interface LayerWeights {
  attnNorm: Float32Array; // [d]
  wqkv: Float32Array; // [d, (H + 2·Hkv)·hd]: wq, wk and wv side by side, so one product makes all three
  wo: Float32Array; // [d, d]
  mlpNorm: Float32Array; // [d]
  wGate: Float32Array; // [d, ffn], the first half of one [2, d, ffn] array whose second half is w_up
  wUp: Float32Array; // [d, ffn]
  wGateUp: Float32Array; // [2, d, ffn]
  wDown: Float32Array; // [ffn, d]
}

/** One sequence's keys and values, each [layers][kv heads][context][head_dim]; positions 0..length−1 hold data. */
export interface DecoderCache {
  readonly k: Float32Array;
  readonly v: Float32Array;
  length: number;
  /** The last position's logits from the latest `forward` on this cache; the next call overwrites them. */
  readonly logits: Float32Array;
}

/**
 * A model's weights laid out for generation, and its scratch space. `forward` is synchronous, so one
 * Decoder serves any number of interleaved sequences, each with its own cache. The weights are a copy:
 * build a new Decoder after the parameters change (decoderFor notices an assign).
 */
export class Decoder {
  private readonly layers: LayerWeights[] = [];
  private readonly embedding: Float32Array; // [vocab, d], also the output head (tied)
  private readonly finalNorm: Float32Array;
  private readonly cos: Float32Array; // [context, hd/2]
  private readonly sin: Float32Array;
  private readonly hd: number;
  private readonly width: number; // of a q|k|v row: (H + 2·Hkv)·hd
  // Scratch for up to `context` rows.
  private readonly x: Float32Array; // the residual stream [rows, d]
  private readonly normed: Float32Array; // [rows, d]
  private readonly qkv: Float32Array; // [rows, width]
  private readonly attended: Float32Array; // [rows, d]
  private readonly branch: Float32Array; // a branch's output [rows, d]
  private readonly gateUp: Float32Array; // [2, rows, ffn]
  private readonly gated: Float32Array; // [rows, ffn]
  private readonly rstd: Float32Array; // [rows]
  private readonly dataIds: object[];

  constructor(
    private readonly native: NativeKernels,
    params: Params,
    readonly config: ModelConfig,
  ) {
    const c = config;
    // dataSync() may hand out the backend's own array (cpu does): what is kept as it is gets copied, what
    // is laid out anew (q/k/v side by side, gate and up stacked) is read in place.
    const read = (name: string): Float32Array => {
      const v = params.get(name);
      if (!v) throw new Error(`decoder: the parameters have no tensor "${name}"`);
      return v.dataSync() as Float32Array;
    };
    const weight = (name: string) => read(name).slice();
    this.dataIds = [...params.values()].map((v) => v.dataId);
    this.hd = c.d_model / c.n_heads;
    this.width = (c.n_heads + 2 * c.n_kv_heads) * this.hd;
    this.embedding = weight('tok_embedding');
    this.finalNorm = weight('final_norm');
    for (let l = 0; l < c.n_layers; l++) {
      const w = (name: string) => weight(`layers.${l}.${name}`);
      const r = (name: string) => read(`layers.${l}.${name}`);
      const wGateUp = new Float32Array(2 * c.d_model * c.ffn_hidden);
      wGateUp.set(r('w_gate'));
      wGateUp.set(r('w_up'), c.d_model * c.ffn_hidden);
      this.layers.push({
        attnNorm: w('attn_norm'),
        wqkv: sideBySide([r('wq'), r('wk'), r('wv')], c.d_model),
        wo: w('wo'),
        mlpNorm: w('mlp_norm'),
        wGate: wGateUp.subarray(0, c.d_model * c.ffn_hidden),
        wUp: wGateUp.subarray(c.d_model * c.ffn_hidden),
        wGateUp,
        wDown: w('w_down'),
      });
    }
    ({ cos: this.cos, sin: this.sin } = ropeTables(c.rope_theta, this.hd, 0, c.context));
    const rows = c.context;
    this.x = new Float32Array(rows * c.d_model);
    this.normed = new Float32Array(rows * c.d_model);
    this.qkv = new Float32Array(rows * this.width);
    this.attended = new Float32Array(rows * c.d_model);
    this.branch = new Float32Array(rows * c.d_model);
    this.gateUp = new Float32Array(2 * rows * c.ffn_hidden);
    this.gated = new Float32Array(rows * c.ffn_hidden);
    this.rstd = new Float32Array(rows);
  }

  /** Whether this decoder still holds `params`' weights for `c` (no variable has been assigned since). */
  matches(params: Params, c: ModelConfig): boolean {
    const keys = Object.keys(c) as Array<keyof ModelConfig>;
    if (keys.length !== Object.keys(this.config).length || keys.some((k) => c[k] !== this.config[k])) return false;
    if (params.size !== this.dataIds.length) return false;
    let i = 0;
    for (const v of params.values()) if (v.dataId !== this.dataIds[i++]) return false;
    return true;
  }

  /** An empty cache for one sequence of up to `context` positions. */
  newCache(): DecoderCache {
    const c = this.config;
    const size = c.n_layers * c.n_kv_heads * c.context * this.hd;
    return { k: new Float32Array(size), v: new Float32Array(size), length: 0, logits: new Float32Array(c.vocab) };
  }

  /**
   * Runs `tokens` at positions cache.length.. (appending their keys and values to the cache) and returns
   * the last one's logits, `cache.logits`.
   */
  forward(cache: DecoderCache, tokens: ArrayLike<number>): Float32Array {
    const c = this.config;
    const n = this.native;
    const T = tokens.length;
    const start = cache.length;
    const d = c.d_model;
    if (T === 0) throw new RangeError('decoder: no tokens to run');
    if (start + T > c.context)
      throw new RangeError(`decoder: positions ${start}..${start + T - 1} do not fit the context of ${c.context}`);
    const { x, normed, attended, branch, rstd } = this;
    for (let t = 0; t < T; t++) {
      const id = tokens[t];
      if (!(Number.isInteger(id) && id >= 0 && id < c.vocab))
        throw new RangeError(`decoder: token ${id} is not in the vocabulary`);
      x.set(this.embedding.subarray(id * d, (id + 1) * d), t * d);
    }
    const cacheStride = c.n_kv_heads * c.context * this.hd; // one layer's keys (or values)
    for (let l = 0; l < c.n_layers; l++) {
      const w = this.layers[l];
      n.rmsnormFwd(x, w.attnNorm, normed, rstd, T, d, c.norm_eps);
      this.project(normed, w.wqkv, this.qkv, T, d, this.width);
      n.attnDecode(
        this.qkv,
        this.cos,
        this.sin,
        cache.k.subarray(l * cacheStride, (l + 1) * cacheStride),
        cache.v.subarray(l * cacheStride, (l + 1) * cacheStride),
        attended,
        T,
        start,
        c.n_heads,
        c.n_kv_heads,
        this.hd,
        c.context,
      );
      this.project(attended, w.wo, branch, T, d, d);
      addInto(x, branch, T * d);
      n.rmsnormFwd(x, w.mlpNorm, normed, rstd, T, d, c.norm_eps);
      this.gateAndUp(w, T);
      n.swigluFwd(this.gateUp, this.gateUp.subarray(T * c.ffn_hidden), this.gated, T * c.ffn_hidden);
      this.project(this.gated, w.wDown, branch, T, c.ffn_hidden, d);
      addInto(x, branch, T * d);
    }
    cache.length = start + T;
    n.rmsnormFwd(x.subarray((T - 1) * d, T * d), this.finalNorm, normed, rstd, 1, d, c.norm_eps);
    n.sgemv(this.embedding, normed, cache.logits, c.vocab, d, false);
    return cache.logits;
  }

  /** out [rows, cols] = input [rows, inner] · w [inner, cols]: sgemv for one row, sgemm for more. */
  private project(input: Float32Array, w: Float32Array, out: Float32Array, rows: number, inner: number, cols: number): void {
    if (rows === 1) this.native.sgemv(w, input, out, inner, cols, true);
    else this.native.sgemm(input, w, out, 1, rows, cols, inner, false, false, 0, 0);
  }

  /** gateUp = [normed·w_gate; normed·w_up], [2, rows, ffn]. */
  private gateAndUp(w: LayerWeights, rows: number): void {
    const { d_model: d, ffn_hidden: ffn } = this.config;
    if (rows === 1) {
      this.native.sgemv(w.wGate, this.normed, this.gateUp, d, ffn, true);
      this.native.sgemv(w.wUp, this.normed, this.gateUp.subarray(ffn), d, ffn, true);
    } else this.native.sgemm(this.normed, w.wGateUp, this.gateUp, 2, rows, ffn, d, false, false, 0, d * ffn);
  }
}

/** Matrices [rows, n_i] side by side: [rows, Σ n_i]. */
function sideBySide(parts: Float32Array[], rows: number): Float32Array {
  const widths = parts.map((p) => p.length / rows);
  const total = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let at = r * total;
    parts.forEach((p, i) => {
      out.set(p.subarray(r * widths[i], (r + 1) * widths[i]), at);
      at += widths[i];
    });
  }
  return out;
}

function addInto(target: Float32Array, values: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) target[i] += values[i];
}

const decoders = new WeakMap<Params, Decoder>();

/**
 * The Decoder for these parameters, built on first use and kept while `params` lives, so repeated
 * generations over a loaded model copy its weights once (a second copy of the weights in memory: 5 MB for
 * micro, 112 MB for small). It is rebuilt when a variable has been assigned since (training), but the
 * parameters must not change while a generation runs on it. null without the native addon, and for a
 * mixture of experts, which it does not implement (generation then runs lm/model.ts with its KV cache).
 */
export function decoderFor(params: Params, c: ModelConfig): Decoder | null {
  if (c.moe) return null;
  const native = loadNative();
  if (!native?.attnDecode) return null; // no addon, or one built before the decoder's kernels (run npm install)
  let decoder = decoders.get(params);
  if (!decoder || !decoder.matches(params, c)) {
    decoder = new Decoder(native, params, c);
    decoders.set(params, decoder);
  }
  return decoder;
}
