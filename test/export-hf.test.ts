// The Hugging Face export (export/hf.ts) run in transformers: `ringlet export` writes a trained tiny checkpoint
// with grouped-query attention as f32 and f16 folders, and export/check_hf.py loads each with AutoTokenizer and
// AutoModelForCausalLM (local_files_only) in .venv's Python. Its token ids must equal Ringlet's on held-out
// text and on tricky strings, its logits Ringlet's forward pass's (which also checks that Ringlet's RoPE
// layout is transformers' rotate_half: the same weights with interleaved query/key rows must fail the
// check), and its greedy generation Ringlet's token for token.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { roundToHalf } from '../collective/fp16.js';
import { openSplit } from '../data/shards.js';
import type { HfDtype } from '../export/hf.js';
import { setupBackend } from '../kernels/backend.js';
import { readCheckpoint, type LoadedCheckpoint } from '../lm/checkpoint.js';
import { generate } from '../lm/generate.js';
import { forward, paramsFromTensors } from '../lm/model.js';
import { ModelConfigSchema, type ModelConfig } from '../lm/model-config.js';
import { fusedKernelsActive } from '../lm/ops.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { makeFixture, root, trainTiny, type Fixture } from './evaluator-fixture.js';

const PYTHON = path.join(root, '.venv/bin/python');
/** Largest |transformers − Ringlet| over the RMS of Ringlet's logits, for the f32 export. */
const F32_TOL = 1e-4;
/** The same for the f16 export against Ringlet's f32 weights (against its f16-rounded weights, F32_TOL). */
const F16_TOL = 1e-2;
/** What the interleaved control must exceed: far beyond any rounding. */
const CONTROL_MIN = 1e-2;
const GENERATED = 24;

const TRICKY = [
  '',
  'Åsa och Örjan åt ärtsoppa på ön; ”Här är det!” sa hon. ÅÄÖ åäö',
  'Numbers: 0 7 42 1234567 3.14159 1,000,000 2024-11-27 1e-5 -12',
  'a  b   c    d     e',
  '  leading and trailing   ',
  'lines\n\n\nand\r\nmore\tTabs\t\t end\n',
  "Hello!!! ...?? (x) [y] {z} — – ‘single’ \"double\" it's we'll they're I'M DON'T",
  'emoji 👍🏽 🇸🇪 👨‍👩‍👧 🙂🙂',
  'end.<|endoftext|>Start of the next <|endoftext|> <|endoftext|><|endoftext|>',
  'nbsp\u00a0em\u2003ideographic\u3000next\u0085line\ufeffbom',
  '日本語のテキスト, café, e\u0301, ﬁ, ß',
];

interface Answer {
  tokenizer_class: string;
  ids: number[][];
  decoded: string[];
  stored_dtypes: string[];
  tied: boolean;
  generation_config: Record<string, unknown>;
  logits: string;
  generated: number[][];
  control_logits?: string;
}

interface Prompt {
  ids: number[];
  max_new_tokens: number;
  repetition_penalty: number;
}

let f: Fixture;
let checkpoint: LoadedCheckpoint;
let config: ModelConfig;
let tokenizer: Tokenizer;
let texts: string[];
let sequences: number[][];
let prompts: Prompt[];
const folders = {} as Record<HfDtype, string>;
let answers: Record<HfDtype, Answer>;

/** Fails with what to install when .venv's Python cannot import transformers. */
function requireTransformers(): void {
  const r = spawnSync(PYTHON, ['-c', 'import transformers, torch, safetensors, tokenizers'], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    assert.fail(
      `the Hugging Face export check needs ${PYTHON} with transformers, torch, safetensors and tokenizers ` +
        `(pinned in export/requirements.txt and bench/peers/requirements.txt): run bash scripts/setup.sh, which ` +
        `installs them into .venv from the machine's wheel store. ${r.error?.message ?? r.stderr.trim().split('\n').at(-1)}`,
    );
}

/** `ringlet export --format hf` of the checkpoint, as a user runs it. */
function exportHf(dtype: HfDtype): string {
  const out = path.join(f.work, `hf-${dtype}`);
  const args = ['export', '--checkpoint', checkpoint.path, '--format', 'hf', '--dtype', dtype, '--out', out, '--json'];
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'cli/ringlet.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `ringlet ${args.join(' ')} failed: ${r.stdout.trim().split('\n').at(-1)} ${r.stderr.slice(-2000)}`);
  return out;
}

function runTransformers(): Record<HfDtype, Answer> {
  const request = { dirs: [folders.f32, folders.f16], texts, sequences, prompts, control: true };
  const r = spawnSync(PYTHON, [path.join(root, 'export/check_hf.py')], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: { ...process.env, HF_HUB_OFFLINE: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1', TRANSFORMERS_VERBOSITY: 'error' },
  });
  assert.equal(r.status, 0, `export/check_hf.py failed:\n${r.error?.message ?? r.stderr.slice(-4000)}`);
  const { versions, results } = JSON.parse(r.stdout);
  console.log(`transformers ${versions.transformers}, torch ${versions.torch}, tokenizers ${versions.tokenizers}`);
  return { f32: results[folders.f32], f16: results[folders.f16] };
}

function floats(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Ringlet's logits [batch·length, vocab] of `sequences`, with each weight passed through `round`. */
function ringletLogits(round: (w: Float32Array) => Float32Array = (w) => w, fused = fusedKernelsActive()): Float32Array {
  const weights = new Map([...checkpoint.weights].map(([name, t]) => [name, { shape: t.shape, data: round(t.data) }]));
  const params = paramsFromTensors(config, weights);
  const before = process.env.RINGLET_FUSED;
  process.env.RINGLET_FUSED = fused ? '1' : '0';
  try {
    const batch = tf.tensor2d(sequences, [sequences.length, sequences[0].length], 'int32');
    const logits = forward(params, config, batch);
    const values = logits.dataSync() as Float32Array;
    tf.dispose([batch, logits]);
    return values;
  } finally {
    if (before === undefined) delete process.env.RINGLET_FUSED;
    else process.env.RINGLET_FUSED = before;
    params.forEach((p) => p.dispose());
  }
}

/** Largest absolute difference over the reference's RMS, and over |reference| where |reference| >= its RMS. */
function relativeError(actual: Float32Array, expected: Float32Array): { ofRms: number; perElement: number } {
  assert.equal(actual.length, expected.length, 'the same number of logits');
  let squares = 0;
  for (const x of expected) squares += x * x;
  const rms = Math.sqrt(squares / expected.length);
  let worst = 0;
  let perElement = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    worst = Math.max(worst, d);
    if (Math.abs(expected[i]) >= rms) perElement = Math.max(perElement, d / Math.abs(expected[i]));
  }
  return { ofRms: worst / rms, perElement };
}

function report(label: string, e: { ofRms: number; perElement: number }): string {
  const line = `${label}: max |diff| / RMS ${e.ofRms.toExponential(2)}, max |diff| / |logit| where |logit| >= RMS ${e.perElement.toExponential(2)}`;
  console.log(line);
  return line;
}

/** A few thousand characters of held-out text: the validation split's last tokens, decoded, its final end-of-document marker included. */
async function heldOutText(): Promise<string> {
  const { tokens } = await openSplit(f.dataset, 'val');
  const tail = Array.from(tokens.subarray(tokens.length - 2000));
  return tokenizer.decode(tail);
}

before(async () => {
  requireTransformers();
  await setupBackend('wasm');
  f = await makeFixture('ringlet-export-hf-');
  checkpoint = await readCheckpoint(await trainTiny(f, 400));
  config = ModelConfigSchema.parse(checkpoint.meta.config.model);
  assert.ok(config.n_kv_heads < config.n_heads, 'the fixture covers grouped-query attention');
  tokenizer = Tokenizer.load(checkpoint.tokenizerPath);
  const heldOut = await heldOutText();
  texts = [heldOut, ...TRICKY];
  const val = tokenizer.encode(heldOut);
  const T = config.context;
  sequences = [0, 1, 2, 3].map((k) => val.slice(k * 400, k * 400 + T));
  sequences.push([tokenizer.eotId, ...val.slice(0, T - 1)]); // a document's start
  prompts = [[tokenizer.eotId], val.slice(100, 108), val.slice(700, 704), val.slice(1200, 1216), tokenizer.encode('The')].flatMap(
    // Within the context: past it Ringlet restarts from the newest half, transformers runs on.
    (ids) =>
      [1, 1.1].map((repetition_penalty) => ({ ids, max_new_tokens: Math.min(GENERATED, T - ids.length), repetition_penalty })),
  );
  folders.f32 = exportHf('f32');
  folders.f16 = exportHf('f16');
  answers = runTransformers();
});

after(() => {
  if (f) fs.rmSync(f.work, { recursive: true, force: true });
});

describe('Hugging Face export in transformers', () => {
  it('loads as a tied LlamaForCausalLM with the stored dtype and `ringlet generate`’s sampling defaults', () => {
    assert.deepEqual(answers.f32.stored_dtypes, ['F32']);
    assert.deepEqual(answers.f16.stored_dtypes, ['F16']);
    for (const a of Object.values(answers)) {
      assert.equal(a.tied, true, 'lm_head shares the embedding');
      assert.equal(a.tokenizer_class, 'TokenizersBackend');
      assert.deepEqual(
        [a.generation_config.eos_token_id, a.generation_config.temperature, a.generation_config.repetition_penalty],
        [tokenizer.eotId, 0.8, 1.1],
      );
    }
  });

  it('AutoTokenizer gives Ringlet’s ids (no BOS added) and decodes them back', () => {
    assert.ok(texts[0].length > 3000, `held-out text is ${texts[0].length} characters`);
    texts.forEach((text, i) => {
      const label = i === 0 ? 'held-out text' : JSON.stringify(text);
      assert.deepEqual(answers.f32.ids[i], tokenizer.encode(text), `ids of ${label}`);
      assert.equal(answers.f32.decoded[i], text, `decoding of ${label}`);
    });
    assert.deepEqual(answers.f16.ids, answers.f32.ids);
  });

  it(`f32: logits equal Ringlet's forward pass within ${F32_TOL} of their RMS, on both of its attention paths`, () => {
    const hf = floats(answers.f32.logits);
    for (const fused of fusedKernelsActive() ? [true, false] : [false]) {
      const e = relativeError(hf, ringletLogits(undefined, fused));
      const line = report(`f32 vs Ringlet (${fused ? 'fused kernels' : 'plain tfjs ops'})`, e);
      assert.ok(e.ofRms < F32_TOL && e.perElement < F32_TOL, line);
    }
  });

  it(`f16: logits equal Ringlet's on f16-rounded weights within ${F32_TOL}, and on its f32 weights within ${F16_TOL}`, () => {
    const hf = floats(answers.f16.logits);
    const rounded = relativeError(
      hf,
      ringletLogits((w) => {
        const copy = w.slice();
        roundToHalf(copy);
        return copy;
      }),
    );
    const line = report('f16 vs Ringlet on f16-rounded weights', rounded);
    assert.ok(rounded.ofRms < F32_TOL, line);
    const e = relativeError(hf, ringletLogits());
    assert.ok(e.ofRms < F16_TOL, report('f16 vs Ringlet f32', e));
  });

  it('the check tells RoPE layouts apart: interleaved query/key rows miss by far', () => {
    const e = relativeError(floats(answers.f32.control_logits!), ringletLogits());
    const line = report('interleaved q/k rows (wrong layout) vs Ringlet', e);
    assert.ok(e.ofRms > CONTROL_MIN, line);
  });

  it(`greedy generation equals Ringlet's token for token (up to ${GENERATED} tokens, repetition penalty 1 and 1.1)`, async () => {
    const params = paramsFromTensors(config, checkpoint.weights);
    try {
      for (const [i, p] of prompts.entries()) {
        const ours = await generate(params, config, p.ids, {
          maxTokens: p.max_new_tokens,
          seed: 0,
          temperature: 0,
          topK: 0,
          topP: 1,
          repetitionPenalty: p.repetition_penalty,
          stopToken: tokenizer.eotId,
        });
        const label = `prompt ${JSON.stringify(tokenizer.decode(p.ids))}, repetition penalty ${p.repetition_penalty}`;
        assert.deepEqual(answers.f32.generated[i], ours.tokens, label);
      }
    } finally {
      params.forEach((p) => p.dispose());
    }
  });
});
