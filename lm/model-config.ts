// The shape of a Llama-style decoder, its named presets, and its exact parameter count.
// The config is plain data so checkpoints, the CLI and the benchmarks can share it.
import { z } from 'zod';

/**
 * A mixture of experts in place of each layer's SwiGLU MLP (lm/moe.ts; docs/training.md "Mixture of
 * experts"). Absent, the model is dense.
 */
export const MoeConfigSchema = z
  .object({
    experts: z.number().int().min(1).max(64), // SwiGLU MLPs of width ffn_hidden per layer
    top_k: z.union([z.literal(1), z.literal(2)]), // experts each token is sent to
    aux_loss_weight: z.number().min(0).max(10).default(0.01), // Switch's load-balancing α
    z_loss_weight: z.number().min(0).max(10).default(0.001), // ST-MoE's router z-loss β
    capacity_factor: z.number().min(0).max(64).default(1.25), // in training; 0: no token is dropped
  })
  .strict()
  .refine((m) => m.top_k <= m.experts, { path: ['top_k'], message: 'must not exceed experts' });
export type MoeConfig = z.infer<typeof MoeConfigSchema>;

/** The fields alone, so a training config can take any subset of them as overrides of a preset. */
export const ModelConfigFields = z
  .object({
    vocab: z
      .number()
      .int()
      .min(2)
      .max(1 << 20), // tokens in the vocabulary, end-of-document included
    d_model: z.number().int().min(8).max(8192), // residual stream width
    n_layers: z.number().int().min(1).max(128),
    n_heads: z.number().int().min(1).max(256), // query heads
    n_kv_heads: z.number().int().min(1).max(256), // key/value heads; fewer than n_heads is grouped-query attention
    ffn_hidden: z.number().int().min(8).max(65536), // SwiGLU inner width
    context: z.number().int().min(2).max(65536), // longest sequence the model is trained on
    rope_theta: z.number().positive().max(1e9),
    norm_eps: z.number().positive().max(1e-2),
    moe: MoeConfigSchema.optional(),
  })
  .strict();

export const ModelConfigSchema = ModelConfigFields.superRefine((c, ctx) => {
  if (c.d_model % c.n_heads !== 0)
    ctx.addIssue({ code: 'custom', path: ['d_model'], message: `must be divisible by n_heads (${c.n_heads})` });
  else if ((c.d_model / c.n_heads) % 2 !== 0)
    ctx.addIssue({ code: 'custom', path: ['n_heads'], message: 'head size d_model/n_heads must be even for RoPE' });
  if (c.n_heads % c.n_kv_heads !== 0)
    ctx.addIssue({ code: 'custom', path: ['n_kv_heads'], message: `must divide n_heads (${c.n_heads})` });
});
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** SwiGLU's hidden width: 8/3 of d_model (keeps the MLP's parameters at 8·d²), rounded up to a multiple of 32. */
export function swigluHidden(dModel: number): number {
  return Math.ceil((8 * dModel) / 3 / 32) * 32;
}

function preset(d: number, layers: number, heads: number, kvHeads: number, context: number, vocab: number): ModelConfig {
  return {
    vocab,
    d_model: d,
    n_layers: layers,
    n_heads: heads,
    n_kv_heads: kvHeads,
    ffn_hidden: swigluHidden(d),
    context,
    rope_theta: 10000,
    norm_eps: 1e-5,
  };
}

/** A dense preset's shape with 4 experts and top-1 routing: the same active parameters, more in total. */
function withExperts(dense: ModelConfig): ModelConfig {
  return { ...dense, moe: { experts: 4, top_k: 1, aux_loss_weight: 0.01, z_loss_weight: 0.001, capacity_factor: 1.25 } };
}

/** Named presets. `vocab` is the reference vocabulary for the parameter count; training uses the dataset's. */
export const PRESETS: Record<string, ModelConfig> = {
  nano: preset(64, 4, 4, 4, 128, 4096), // ~0.5M
  micro: preset(128, 4, 4, 4, 128, 4096), // ~1.3M
  tiny: preset(192, 6, 6, 2, 256, 8192), // ~4M, grouped-query attention
  mini: preset(256, 8, 8, 8, 256, 8192), // ~8M
  small: preset(512, 8, 8, 4, 256, 8192), // ~28M, grouped-query attention
  'moe-nano': withExperts(preset(64, 4, 4, 4, 128, 4096)), // nano's ~0.5M active, ~0.7M in all
  'moe-micro': withExperts(preset(128, 4, 4, 4, 128, 4096)), // micro's ~1.3M active, ~2.9M in all
  'moe-tiny': withExperts(preset(192, 6, 6, 2, 256, 8192)), // tiny's ~4M active, ~9M in all
};

/** The dense preset whose active parameters a preset matches (itself for a dense one): what `bench train` compares against. */
export function denseCounterpart(name: string): string {
  return name.startsWith('moe-') ? name.slice('moe-'.length) : name;
}

export function presetConfig(name: string): ModelConfig {
  const config = PRESETS[name];
  if (!config) throw new Error(`unknown preset "${name}"; choose one of: ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(config);
}

/** Every parameter tensor's name and shape, in the order the model uses them. */
export function parameterShapes(c: ModelConfig): Array<[string, number[]]> {
  const headDim = c.d_model / c.n_heads;
  const kvDim = c.n_kv_heads * headDim;
  const shapes: Array<[string, number[]]> = [['tok_embedding', [c.vocab, c.d_model]]];
  for (let l = 0; l < c.n_layers; l++) {
    shapes.push(
      [`layers.${l}.attn_norm`, [c.d_model]],
      [`layers.${l}.wq`, [c.d_model, c.d_model]],
      [`layers.${l}.wk`, [c.d_model, kvDim]],
      [`layers.${l}.wv`, [c.d_model, kvDim]],
      [`layers.${l}.wo`, [c.d_model, c.d_model]],
      [`layers.${l}.mlp_norm`, [c.d_model]],
    );
    if (c.moe) shapes.push([`layers.${l}.router`, [c.d_model, c.moe.experts]]);
    // One set of names per expert rather than stacked [E, d, h] tensors: each expert is then the dense
    // MLP's three matrices under a prefix, run by the same code, and an expert's tokens multiply its own
    // matrix with no slicing of a stacked one.
    const mlps = c.moe ? Array.from({ length: c.moe.experts }, (_, e) => `layers.${l}.experts.${e}.`) : [`layers.${l}.`];
    for (const prefix of mlps)
      shapes.push(
        [`${prefix}w_gate`, [c.d_model, c.ffn_hidden]],
        [`${prefix}w_up`, [c.d_model, c.ffn_hidden]],
        [`${prefix}w_down`, [c.ffn_hidden, c.d_model]],
      );
  }
  shapes.push(['final_norm', [c.d_model]]);
  return shapes;
}

/** Exact parameter counts. The embedding is tied to the output head, so it is counted once. */
export function parameterCount(c: ModelConfig): { total: number; nonEmbedding: number; embedding: number } {
  const total = parameterShapes(c).reduce((sum, [, shape]) => sum + shape.reduce((a, b) => a * b, 1), 0);
  const embedding = c.vocab * c.d_model;
  return { total, nonEmbedding: total - embedding, embedding };
}

/**
 * Parameters one token's forward pass uses: all of a dense model's; with experts, the shared ones, the
 * routers and top_k experts' MLPs per layer (not the other experts').
 */
export function activeParameterCount(c: ModelConfig): number {
  const { total } = parameterCount(c);
  if (!c.moe) return total;
  const mlp = 3 * c.d_model * c.ffn_hidden;
  return total - c.n_layers * (c.moe.experts - c.moe.top_k) * mlp;
}

/**
 * Training FLOPs per token: 6N + 12·L·d·T (PaLM, appendix B), N counting the tied embedding once and,
 * with experts, only the active parameters (a token's matmuls touch no others), so MFU stays honest.
 */
export function flopsPerToken(c: ModelConfig): number {
  return 6 * activeParameterCount(c) + 12 * c.n_layers * c.d_model * c.context;
}

/** The dimensions every summary reports (train, distributed train, benchmarks), in one place. */
export function modelDimensions(c: ModelConfig) {
  return {
    d_model: c.d_model,
    n_layers: c.n_layers,
    n_heads: c.n_heads,
    n_kv_heads: c.n_kv_heads,
    context: c.context,
    vocab: c.vocab,
  };
}
