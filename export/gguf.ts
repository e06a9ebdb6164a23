// A checkpoint as one GGUF file for llama.cpp (and Ollama, LM Studio, everything built on it), made the way
// llama.cpp's convert_hf_to_gguf.py makes one from a Hugging Face Llama folder: the weights in transformers'
// layout (export/hf-layout.ts) under llama.cpp's names, the rows of Q and K permuted to the order of
// llama.cpp's RoPE, the `llama` architecture's hyperparameters, and the byte-level BPE tokenizer as a `gpt2`
// vocabulary (tokens, types, merges) with the `gpt-2` pre-tokenizer, whose split is GPT-2's regex, as
// Ringlet's is (test/export-gguf.test.ts checks llama.cpp's token ids against Ringlet's).
//
// Ringlet's <|endoftext|> separates documents; it is BOS, EOS and EOT at once, and llama.cpp adds it to no
// prompt, as `ringlet generate` does not.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { toHalf } from '../collective/fp16.js';
import type { LoadedCheckpoint } from '../lm/checkpoint.js';
import type { ModelConfig } from '../lm/model-config.js';
import { denseConfigToExport } from './dense-config.js';
import { EOT_TOKEN, Tokenizer } from '../lm/tokenizer.js';
import { encodeGguf, type GgmlType, type GgufTensor, type GgufValue } from './gguf-writer.js';
import { hfTensors, type ExportTensor } from './hf-layout.js';
import { Q8_0_BLOCK, quantizeQ8_0 } from './q8_0.js';
import type { ExportFile } from './write-dir.js';

export const GGUF_DTYPES = ['f32', 'f16', 'q8_0'] as const;
export type GgufDtype = (typeof GGUF_DTYPES)[number];
export const GGUF_FILE = 'model.gguf';

/** llama.cpp's general.file_type: what most of the tensors are (1-D ones stay F32 in every file). */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7 };
/** llama.cpp's token types (gguf-py TokenType). */
const TOKEN_TYPE = { normal: 1, control: 3 } as const;

interface GgufVocabulary {
  tokens: string[]; // by id, as byte-level symbols; the end-of-document token as its text
  types: Int32Array;
  merges: string[]; // "left right", in rank order
  eotId: number;
}

/**
 * The tokenizer as a GGUF `gpt2` vocabulary, or an error naming what GGUF cannot express so that
 * llama.cpp would tokenize as Ringlet does: two ids with the same text (llama.cpp finds a token by its text),
 * an added token besides <|endoftext|> (Ringlet reads it as plain text, llama.cpp as a token of its own),
 * added-token flags (lstrip, rstrip, single_word, normalized, not special) and BPE options (ignore_merges,
 * byte_fallback, word prefixes or suffixes) that a token type cannot carry.
 */
function ggufVocabulary(tokenizerPath: string): GgufVocabulary {
  const fail = (why: string): never => {
    throw new Error(`cannot export the tokenizer ${tokenizerPath} to GGUF: ${why}`);
  };
  const tokenizer = Tokenizer.load(tokenizerPath); // a Ringlet byte-level BPE: every id, all 256 bytes, merges within the vocabulary
  const json = JSON.parse(readFileSync(tokenizerPath, 'utf8')) as {
    added_tokens: Array<{
      id: number;
      content: string;
      special?: boolean;
      lstrip?: boolean;
      rstrip?: boolean;
      single_word?: boolean;
      normalized?: boolean;
    }>;
    model: Record<string, unknown> & { vocab: Record<string, number>; merges: Array<string | [string, string]> };
  };
  const { model } = json;
  if (model.ignore_merges) fail('the BPE model sets ignore_merges, which llama.cpp applies only to some pre-tokenizers');
  if (model.byte_fallback) fail('the BPE model sets byte_fallback, which a gpt2 vocabulary does not have');
  if (model.continuing_subword_prefix || model.end_of_word_suffix)
    fail('the BPE model marks word pieces (continuing_subword_prefix or end_of_word_suffix), which llama.cpp does not');

  const tokens: string[] = [];
  const types = new Int32Array(tokenizer.vocabSize).fill(TOKEN_TYPE.normal);
  for (const [token, id] of Object.entries(model.vocab)) {
    if (tokens[id] !== undefined) fail(`id ${id} is both "${tokens[id]}" and "${token}"`);
    tokens[id] = token;
  }
  for (const added of json.added_tokens) {
    if (added.content !== EOT_TOKEN)
      fail(
        `added token "${added.content}" (id ${added.id}): Ringlet encodes its text as bytes, llama.cpp would match it as one token`,
      );
    const flags = (['lstrip', 'rstrip', 'single_word', 'normalized'] as const).filter((flag) => added[flag]);
    if (flags.length > 0 || added.special !== true)
      fail(
        `added token ${EOT_TOKEN} is ${added.special !== true ? 'not special' : flags.join(', ')}, which a GGUF token type cannot express`,
      );
    if (tokens[added.id] !== undefined && tokens[added.id] !== added.content)
      fail(`id ${added.id} is both "${tokens[added.id]}" and the added token ${EOT_TOKEN}`);
    tokens[added.id] = added.content;
    types[added.id] = TOKEN_TYPE.control;
  }
  const idOf = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (token === '') fail(`id ${id} is the empty string, which llama.cpp cannot look up`);
    const other = idOf.get(token);
    if (other !== undefined) fail(`ids ${other} and ${id} are both "${token}": llama.cpp finds a token by its text`);
    idOf.set(token, id);
  });
  const merges = model.merges.map((merge) => (typeof merge === 'string' ? merge : merge.join(' ')));
  return { tokens, types, merges, eotId: tokenizer.eotId };
}

/** transformers' tensor names → llama.cpp's (convert_hf_to_gguf.py's tensor map for Llama). */
const TENSOR_NAMES: Array<[RegExp, string]> = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$/, 'blk.$1.attn_q.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$/, 'blk.$1.attn_k.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$/, 'blk.$1.attn_v.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blk.$1.attn_output.weight'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, 'blk.$1.ffn_gate.weight'],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, 'blk.$1.ffn_up.weight'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, 'blk.$1.ffn_down.weight'],
  [/^model\.norm\.weight$/, 'output_norm.weight'],
];

function ggufName(hfName: string): string {
  for (const [pattern, name] of TENSOR_NAMES) if (pattern.test(hfName)) return hfName.replace(pattern, name);
  throw new Error(`GGUF export: no llama.cpp name for tensor "${hfName}"`);
}

/**
 * The rows of a [heads·head_dim, in] projection reordered for llama.cpp's RoPE. transformers (and Ringlet)
 * rotate the two halves of each head's vector, pairing dimension i with i + head_dim/2; llama.cpp's `llama`
 * rotates adjacent pairs (2i, 2i+1). So within each head, row j·head_dim/2 + i moves to 2i + j
 * (convert_hf_to_gguf.py's LlamaModel.permute).
 */
function ropeInterleaved(t: ExportTensor, heads: number): ExportTensor {
  const [rows, cols] = t.shape;
  const half = rows / heads / 2;
  const out = new Float32Array(t.data.length);
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < 2; j++)
      for (let i = 0; i < half; i++) {
        const from = (h * 2 * half + j * half + i) * cols;
        out.set(t.data.subarray(from, from + cols), (h * 2 * half + 2 * i + j) * cols);
      }
  return { ...t, data: out };
}

function encodeF16(t: ExportTensor): Uint8Array {
  const out = new Uint8Array(t.data.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < t.data.length; i++) {
    const half = toHalf(t.data[i]);
    if ((half & 0x7fff) === 0x7c00)
      throw new Error(`GGUF export: tensor "${t.name}" holds ${t.data[i]}, beyond float16's range (±65504); export f32 or q8_0`);
    view.setUint16(2 * i, half, true);
  }
  return out;
}

/** The tensor as stored for `dtype`: 1-D tensors (norm gains) stay F32, as llama.cpp needs; q8_0 falls back to F16
 * for a matrix whose rows are not whole blocks, as convert_hf_to_gguf.py does. */
function encodeTensor(t: ExportTensor, dtype: GgufDtype): GgufTensor {
  for (const v of t.data) if (!Number.isFinite(v)) throw new Error(`GGUF export: tensor "${t.name}" holds ${v}`);
  let type: GgmlType = t.shape.length === 1 || dtype === 'f32' ? 'F32' : dtype === 'f16' ? 'F16' : 'Q8_0';
  if (type === 'Q8_0' && t.shape[t.shape.length - 1] % Q8_0_BLOCK !== 0) type = 'F16';
  const data =
    type === 'F32'
      ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
      : type === 'F16'
        ? encodeF16(t)
        : quantizeQ8_0(t.data);
  return { name: t.name, shape: t.shape, type, data };
}

/** The run folder's name for a checkpoint under <run>/checkpoints/step-N, else the checkpoint folder's. */
function modelName(checkpointPath: string): string {
  const parent = path.dirname(checkpointPath);
  return path.basename(path.basename(parent) === 'checkpoints' ? path.dirname(parent) : checkpointPath);
}

/** The checkpoint as GGUF v3 for llama.cpp: one file, GGUF_FILE. */
export async function ggufFiles(checkpoint: LoadedCheckpoint, dtype: GgufDtype): Promise<ExportFile[]> {
  if (os.endianness() !== 'LE') throw new Error('GGUF export needs a little-endian machine');
  if (!GGUF_DTYPES.includes(dtype)) throw new Error(`unknown GGUF dtype "${dtype}"; choose one of: ${GGUF_DTYPES.join(', ')}`);
  const c: ModelConfig = denseConfigToExport(checkpoint.meta, 'GGUF');
  const vocab = ggufVocabulary(checkpoint.tokenizerPath);
  if (vocab.tokens.length !== c.vocab)
    throw new Error(`cannot export to GGUF: the tokenizer has ${vocab.tokens.length} ids, the model's embedding ${c.vocab} rows`);

  const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
  const f32 = (value: number): GgufValue => ({ type: 'float32', value });
  const str = (value: string): GgufValue => ({ type: 'string', value });
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', str('llama')],
    ['general.name', str(modelName(checkpoint.path))],
    ['general.file_type', u32(FILE_TYPE[dtype])],
    ['general.quantization_version', u32(2)],
    ['llama.vocab_size', u32(c.vocab)],
    ['llama.context_length', u32(c.context)],
    ['llama.embedding_length', u32(c.d_model)],
    ['llama.block_count', u32(c.n_layers)],
    ['llama.feed_forward_length', u32(c.ffn_hidden)],
    ['llama.rope.dimension_count', u32(c.d_model / c.n_heads)],
    ['llama.attention.head_count', u32(c.n_heads)],
    ['llama.attention.head_count_kv', u32(c.n_kv_heads)],
    ['llama.rope.freq_base', f32(c.rope_theta)],
    ['llama.attention.layer_norm_rms_epsilon', f32(c.norm_eps)],
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('gpt-2')],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: vocab.tokens }],
    ['tokenizer.ggml.token_type', { type: 'int32[]', value: vocab.types }],
    ['tokenizer.ggml.merges', { type: 'string[]', value: vocab.merges }],
    ['tokenizer.ggml.bos_token_id', u32(vocab.eotId)],
    ['tokenizer.ggml.eos_token_id', u32(vocab.eotId)],
    ['tokenizer.ggml.eot_token_id', u32(vocab.eotId)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ]);

  // The head is tied: with no output.weight, llama.cpp multiplies by token_embd.
  const tensors = hfTensors(c, checkpoint.weights).map((t) => {
    const named = { ...t, name: ggufName(t.name) };
    if (named.name.endsWith('.attn_q.weight')) return encodeTensor(ropeInterleaved(named, c.n_heads), dtype);
    if (named.name.endsWith('.attn_k.weight')) return encodeTensor(ropeInterleaved(named, c.n_kv_heads), dtype);
    return encodeTensor(named, dtype);
  });
  return [{ name: GGUF_FILE, bytes: encodeGguf(metadata, tensors) }];
}
