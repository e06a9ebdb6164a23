// The model config of a checkpoint to export. Both exports write Llama's dense layout; a mixture of
// experts is refused before anything is written: Ringlet's top-1 gate is the router probability (Switch),
// which Mixtral's layout in llama.cpp and transformers (gates renormalised over the chosen experts) cannot
// express, and no MoE layout is written.
import type { CheckpointMeta } from '../lm/checkpoint.js';
import { ModelConfigSchema, type ModelConfig } from '../lm/model-config.js';

export function denseConfigToExport(meta: CheckpointMeta, format: string): ModelConfig {
  const c = ModelConfigSchema.parse(meta.config.model);
  if (c.moe)
    throw new Error(
      `cannot export to ${format}: the checkpoint is a mixture of experts (${c.moe.experts} experts, top-${c.moe.top_k}), ` +
        'and the exports write only the dense Llama layout',
    );
  return c;
}
