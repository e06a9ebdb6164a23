// A checkpoint as a Hugging Face transformers folder: LlamaForCausalLM's config.json and model.safetensors
// (export/hf-layout.ts's names and [out, in] weights, f32 or f16), the checkpoint's own tokenizer.json with
// a tokenizer_config.json that keeps it as it is (no BOS added, spaces as written), and a
// generation_config.json whose sampling is `ringlet generate`'s. Every id that marks a document's start or
// end is Ringlet's <|endoftext|>, as in GPT-2. test/export-hf.test.ts loads the folder in transformers.
import { readFile } from 'node:fs/promises';
import type { LoadedCheckpoint } from '../lm/checkpoint.js';
import { denseConfigToExport } from './dense-config.js';
import { encodeSafetensors } from '../lm/safetensors.js';
import { EOT_TOKEN, Tokenizer } from '../lm/tokenizer.js';
import { hfTensors } from './hf-layout.js';
import type { ExportFile } from './write-dir.js';

export type HfDtype = 'f32' | 'f16';

const TORCH_DTYPE = { f32: 'float32', f16: 'float16' } as const;
const STORED_DTYPE = { f32: 'F32', f16: 'F16' } as const;

function jsonFile(name: string, value: unknown): ExportFile {
  return { name, bytes: Buffer.from(`${JSON.stringify(value, null, 2)}\n`) };
}

export async function hfFiles(checkpoint: LoadedCheckpoint, dtype: HfDtype): Promise<ExportFile[]> {
  const c = denseConfigToExport(checkpoint.meta, 'Hugging Face');
  const tokenizerJson = await readFile(checkpoint.tokenizerPath);
  const tokenizer = Tokenizer.load(checkpoint.tokenizerPath);
  if (tokenizer.vocabSize !== c.vocab)
    throw new Error(`checkpoint ${checkpoint.path}: the tokenizer has ${tokenizer.vocabSize} ids, the model ${c.vocab}`);
  const eot = tokenizer.eotId;

  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocab,
    hidden_size: c.d_model,
    intermediate_size: c.ffn_hidden,
    num_hidden_layers: c.n_layers,
    num_attention_heads: c.n_heads,
    num_key_value_heads: c.n_kv_heads,
    head_dim: c.d_model / c.n_heads,
    hidden_act: 'silu',
    max_position_embeddings: c.context,
    rms_norm_eps: c.norm_eps,
    // transformers 5 reads rope_parameters; 4.x and llama.cpp's convert_hf_to_gguf.py read rope_theta.
    rope_theta: c.rope_theta,
    rope_parameters: { rope_type: 'default', rope_theta: c.rope_theta },
    tie_word_embeddings: true,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: eot,
    eos_token_id: eot,
    pad_token_id: eot,
    dtype: TORCH_DTYPE[dtype],
    torch_dtype: TORCH_DTYPE[dtype], // the 4.x name of dtype
  };

  const tensors = new Map(hfTensors(c, checkpoint.weights).map((t) => [t.name, { shape: t.shape, data: t.data }]));
  const model = encodeSafetensors(tensors, { format: 'pt' }, STORED_DTYPE[dtype]);

  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: EOT_TOKEN,
    eos_token: EOT_TOKEN,
    unk_token: EOT_TOKEN,
    pad_token: EOT_TOKEN,
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    model_max_length: c.context,
  };

  // `ringlet generate`'s defaults (cli/generate.ts); transformers applies them in Ringlet's order
  // (repetition penalty, temperature, top-k, top-p). No max_length: transformers warns whenever a caller's
  // max_new_tokens meets one (the trained context is the tokenizer's model_max_length).
  const generationConfig = {
    bos_token_id: eot,
    eos_token_id: eot,
    pad_token_id: eot,
    do_sample: true,
    temperature: 0.8,
    top_k: 50,
    top_p: 0.95,
    repetition_penalty: 1.1,
  };

  return [
    jsonFile('config.json', config),
    { name: 'model.safetensors', bytes: model },
    { name: 'tokenizer.json', bytes: tokenizerJson },
    jsonFile('tokenizer_config.json', tokenizerConfig),
    jsonFile('generation_config.json', generationConfig),
  ];
}
