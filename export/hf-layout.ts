// A Ringlet checkpoint's weights in Hugging Face Llama's layout, the common ground of both exports
// (export/hf.ts writes it as is, export/gguf.ts goes on from it the way llama.cpp's convert_hf_to_gguf.py
// does). Ringlet keeps a linear layer's weight as [in, out] (x·W); transformers keeps [out, in]
// (nn.Linear: x·Wᵀ), so every projection is transposed. Norm gains and the embedding ([vocab, d]) keep
// their layout. RoPE needs nothing: Ringlet rotates the two halves of each head's vector (lm/model.ts
// applyRope), as transformers' Llama does (rotate_half), which test/export-hf.test.ts checks on logits.
import type { ModelConfig } from '../lm/model-config.js';

export interface ExportTensor {
  name: string;
  shape: number[];
  data: Float32Array; // row-major
}

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

/** [rows, cols] row-major → [cols, rows] row-major. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** The weights under transformers' LlamaForCausalLM names, projections as [out, in]; the head is tied (no lm_head). */
export function hfTensors(c: ModelConfig, weights: Weights): ExportTensor[] {
  const get = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`the checkpoint has no tensor "${name}"`);
    return t;
  };
  const asIs = (from: string, to: string): ExportTensor => ({ name: to, shape: get(from).shape, data: get(from).data });
  const linear = (from: string, to: string): ExportTensor => {
    const [inDim, outDim] = get(from).shape;
    return { name: to, shape: [outDim, inDim], data: transpose(get(from).data, inDim, outDim) };
  };
  const tensors = [asIs('tok_embedding', 'model.embed_tokens.weight')];
  for (let l = 0; l < c.n_layers; l++) {
    const r = `layers.${l}`;
    const h = `model.layers.${l}`;
    tensors.push(
      asIs(`${r}.attn_norm`, `${h}.input_layernorm.weight`),
      linear(`${r}.wq`, `${h}.self_attn.q_proj.weight`),
      linear(`${r}.wk`, `${h}.self_attn.k_proj.weight`),
      linear(`${r}.wv`, `${h}.self_attn.v_proj.weight`),
      linear(`${r}.wo`, `${h}.self_attn.o_proj.weight`),
      asIs(`${r}.mlp_norm`, `${h}.post_attention_layernorm.weight`),
      linear(`${r}.w_gate`, `${h}.mlp.gate_proj.weight`),
      linear(`${r}.w_up`, `${h}.mlp.up_proj.weight`),
      linear(`${r}.w_down`, `${h}.mlp.down_proj.weight`),
    );
  }
  tensors.push(asIs('final_norm', 'model.norm.weight'));
  return tensors;
}
