// Tests for lm/checkpoint.ts against real directories in a tmp dir: layout, round trip, pruning, corruption, compatibility.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  checkCompatible,
  listCheckpoints,
  readCheckpoint,
  pruneCheckpoints,
  writeCheckpoint,
  type CheckpointContent,
  type CheckpointMeta,
  type CheckpointMetaInput,
} from '../lm/checkpoint.js';
import { decodeSafetensors, type TensorMap } from '../lm/safetensors.js';

const TOKENIZER_SHA = 'a'.repeat(64);
// An interface (no index signature), as model code typically declares its config.
interface TinyModelConfig {
  d_model: number;
  n_layers: number;
  vocab_size: number;
}
const MODEL_CONFIG: TinyModelConfig = { d_model: 4, n_layers: 2, vocab_size: 5 };

const createdDirs: string[] = [];
after(() => {
  for (const dir of createdDirs) rmSync(dir, { recursive: true, force: true });
});

function freshRunDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringlet-ckpt-'));
  createdDirs.push(dir);
  return dir;
}

function filled(length: number, start: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => start + i * 0.5);
}

function metaInput(overrides: Partial<CheckpointMetaInput> = {}): CheckpointMetaInput {
  return {
    config: { model: MODEL_CONFIG, training: { lr: 3e-4, batch_size: 8 } },
    tokens_seen: 12800,
    data_cursor: { shard: 3, offset: 4096 },
    rng_state: { seed: 42, draws: 17 },
    schedule_horizon_steps: 1000,
    tokenizer_sha256: TOKENIZER_SHA,
    backend: 'cpu',
    metrics: { val_loss: 3.5 },
    ...overrides,
  };
}

/** Weights and AdamW moments whose values depend on `step`, so checkpoints of different steps differ. */
function content(step: number): CheckpointContent {
  const weights: TensorMap = new Map([
    ['embed', { shape: [5, 4], data: filled(20, step) }],
    ['norm', { shape: [4], data: filled(4, -step) }],
  ]);
  const optimizer: TensorMap = new Map();
  for (const [name, { shape, data }] of weights) {
    optimizer.set(`m.${name}`, { shape, data: data.map((x) => x / 10) });
    optimizer.set(`v.${name}`, { shape, data: data.map((x) => x * x) });
  }
  return { step, weights, optimizer, meta: metaInput(), tokenizerJson: Buffer.from('{"model":{"type":"BPE"}}') };
}

const steps = async (runDir: string) => (await listCheckpoints(runDir)).map((entry) => entry.step);

describe('writeCheckpoint / readCheckpoint', () => {
  it('writes the documented layout and reads back everything', async () => {
    const runDir = freshRunDir();
    const written = content(100);
    const path = await writeCheckpoint(runDir, written, 3);
    assert.equal(path, join(runDir, 'checkpoints', 'step-00000100'));
    assert.deepEqual(readdirSync(path).sort(), ['meta.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.json']);
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).sort(), ['latest', 'step-00000100']);
    assert.equal(readFileSync(join(runDir, 'checkpoints', 'latest'), 'utf8'), 'step-00000100\n');

    const loaded = await readCheckpoint(path, { withOptimizer: true });
    assert.equal(loaded.path, path);
    assert.deepEqual(loaded.weights, written.weights);
    assert.deepEqual(loaded.optimizer, written.optimizer);
    const { files, created_at, ...rest } = loaded.meta;
    assert.deepEqual(rest, { ...metaInput(), format_version: 1, step: 100 });
    assert.ok(!Number.isNaN(Date.parse(created_at)));
    assert.equal(files['model.safetensors'].bytes, readFileSync(join(path, 'model.safetensors')).byteLength);
  });

  it('leaves the optimizer unloaded unless asked', async () => {
    const runDir = freshRunDir();
    await writeCheckpoint(runDir, content(1), 1);
    assert.equal((await readCheckpoint(runDir)).optimizer, null);
  });

  it('makes model.safetensors usable on its own, carrying the model config', async () => {
    const runDir = freshRunDir();
    const path = await writeCheckpoint(runDir, content(7), 1);
    const model = decodeSafetensors(readFileSync(join(path, 'model.safetensors')));
    assert.deepEqual(JSON.parse(model.metadata.model_config), MODEL_CONFIG);
    assert.deepEqual([...model.tensors.keys()], ['embed', 'norm']);
  });

  it('keeps only the last K checkpoints', async () => {
    const runDir = freshRunDir();
    for (const step of [100, 200, 300, 400, 500]) await writeCheckpoint(runDir, content(step), 2);
    assert.deepEqual(await steps(runDir), [400, 500]);
    assert.deepEqual(
      readdirSync(join(runDir, 'checkpoints')).filter((name) => name.startsWith('.tmp-')),
      [],
    );
  });

  it('never prunes the checkpoint just written, even when older than the rest', async () => {
    const runDir = freshRunDir();
    for (const step of [100, 200, 300]) await writeCheckpoint(runDir, content(step), 3);
    // Training resumed from step 100 after the user rolled back: the new lineage's step 150 must survive.
    await writeCheckpoint(runDir, content(150), 2);
    assert.deepEqual(await steps(runDir), [150, 300]);
    assert.equal((await readCheckpoint(runDir)).meta.step, 150);
  });

  it('writes without pruning until told, then prunes around the agreed checkpoint (a distributed barrier)', async () => {
    const runDir = freshRunDir();
    await writeCheckpoint(runDir, content(100), 1);
    const pending = await writeCheckpoint(runDir, content(200), null);
    assert.deepEqual(await steps(runDir), [100, 200], 'the restore point survives until the new one is agreed');
    await pruneCheckpoints(runDir, 1, pending);
    assert.deepEqual(await steps(runDir), [200]);
    await assert.rejects(pruneCheckpoints(runDir, 0, pending), /keepLast must be an integer >= 1/);
  });

  it('replaces an existing checkpoint of the same step', async () => {
    const runDir = freshRunDir();
    await writeCheckpoint(runDir, content(100), 2);
    const replacement = content(100);
    replacement.weights.get('norm')!.data.fill(9);
    await writeCheckpoint(runDir, replacement, 2);
    assert.deepEqual((await readCheckpoint(runDir)).weights.get('norm')!.data, new Float32Array(4).fill(9));
    assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).sort(), ['latest', 'step-00000100']);
  });

  it('reads a run directory via latest, or the highest step without it, ignoring .tmp- directories', async () => {
    const runDir = freshRunDir();
    for (const step of [100, 200]) await writeCheckpoint(runDir, content(step), 5);
    // A checkpoint still being written: a higher step, with no valid files yet.
    const inFlight = join(runDir, 'checkpoints', '.tmp-step-00000300-1234-abcd');
    mkdirSync(inFlight);
    writeFileSync(join(inFlight, 'meta.json'), '{');
    assert.deepEqual(await steps(runDir), [100, 200]);
    assert.equal((await readCheckpoint(runDir)).meta.step, 200);

    writeFileSync(join(runDir, 'checkpoints', 'latest'), 'step-00000100\n');
    assert.equal((await readCheckpoint(runDir)).meta.step, 100);

    rmSync(join(runDir, 'checkpoints', 'latest'));
    assert.equal((await readCheckpoint(runDir)).meta.step, 200);
  });

  it('lists nothing for a run without checkpoints', async () => {
    assert.deepEqual(await listCheckpoints(freshRunDir()), []);
  });
});

describe('readCheckpoint errors', () => {
  it('reports a sha256 mismatch when a byte of model.safetensors flips', async () => {
    const path = await writeCheckpoint(freshRunDir(), content(100), 1);
    const file = join(path, 'model.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.byteLength - 1] ^= 0x01;
    writeFileSync(file, bytes);
    const expected = JSON.parse(readFileSync(join(path, 'meta.json'), 'utf8')).files['model.safetensors'].sha256;
    await assert.rejects(
      readCheckpoint(path),
      new RegExp(`^Error: checkpoint ${path}: model\\.safetensors sha256 mismatch \\(expected ${expected}, got [0-9a-f]{64}\\)$`),
    );
  });

  it('reports a truncated file by size', async () => {
    const path = await writeCheckpoint(freshRunDir(), content(100), 1);
    const file = join(path, 'optimizer.safetensors');
    const size = readFileSync(file).byteLength;
    truncateSync(file, size - 10);
    await readCheckpoint(path); // weights alone still load
    await assert.rejects(readCheckpoint(path, { withOptimizer: true }), {
      message: `checkpoint ${path}: optimizer.safetensors is ${size - 10} bytes, meta.json says ${size} (truncated or replaced)`,
    });
  });

  it('rejects an invalid meta.json, naming the field', async () => {
    const path = await writeCheckpoint(freshRunDir(), content(100), 1);
    const meta = JSON.parse(readFileSync(join(path, 'meta.json'), 'utf8'));
    writeFileSync(join(path, 'meta.json'), JSON.stringify({ ...meta, step: 'one hundred' }));
    await assert.rejects(readCheckpoint(path), /meta\.json is invalid:[\s\S]*step/);
  });

  it('rejects latest naming a missing checkpoint', async () => {
    const runDir = freshRunDir();
    await writeCheckpoint(runDir, content(100), 1);
    writeFileSync(join(runDir, 'checkpoints', 'latest'), 'step-00000999\n');
    await assert.rejects(readCheckpoint(runDir), /latest names step-00000999, which does not exist/);
  });

  it('rejects a directory that is neither a checkpoint nor a run', async () => {
    const dir = freshRunDir();
    await assert.rejects(readCheckpoint(dir), /is neither a checkpoint directory/);
    mkdirSync(join(dir, 'checkpoints'));
    await assert.rejects(readCheckpoint(dir), /has no checkpoints/);
  });
});

describe('writeCheckpoint input errors', () => {
  it('rejects optimizer tensors that do not match a weight, writing nothing', async () => {
    const runDir = freshRunDir();
    const bad = content(100);
    bad.optimizer.set('m.missing', { shape: [1], data: new Float32Array(1) });
    await assert.rejects(writeCheckpoint(runDir, bad, 1), /optimizer tensor "m\.missing" has no weight named "missing"/);
    const misshapen = content(100);
    misshapen.optimizer.set('v.norm', { shape: [2, 2], data: new Float32Array(4) });
    await assert.rejects(
      writeCheckpoint(runDir, misshapen, 1),
      /optimizer tensor "v\.norm" has shape \[2,2\], weight "norm" has \[4\]/,
    );
    assert.deepEqual(await listCheckpoints(runDir), []);
  });

  it('rejects invalid meta such as a NaN metric, writing nothing', async () => {
    const runDir = freshRunDir();
    const bad = { ...content(100), meta: metaInput({ metrics: { val_loss: NaN } }) };
    await assert.rejects(writeCheckpoint(runDir, bad, 1), /checkpoint meta is invalid:[\s\S]*metrics\.val_loss/);
    assert.deepEqual(await listCheckpoints(runDir), []);
  });

  it('rejects opaque state that is not plain JSON', async () => {
    const bad = { ...content(100), meta: metaInput({ data_cursor: { shard: 1n } }) };
    await assert.rejects(writeCheckpoint(freshRunDir(), bad, 1), /checkpoint meta is invalid:[\s\S]*data_cursor/);
  });

  it('rejects keepLast below 1', async () => {
    await assert.rejects(writeCheckpoint(freshRunDir(), content(1), 0), /keepLast must be an integer >= 1/);
  });
});

describe('checkCompatible', () => {
  let meta: CheckpointMeta;
  before(async () => {
    meta = (await readCheckpoint(await writeCheckpoint(freshRunDir(), content(100), 1))).meta;
  });

  it('accepts the same model config and tokenizer, whatever the key order', () => {
    checkCompatible(meta, { modelConfig: { vocab_size: 5, n_layers: 2, d_model: 4 }, tokenizerSha256: TOKENIZER_SHA });
  });

  it('names every differing model config key with both values', () => {
    assert.throws(
      () => checkCompatible(meta, { modelConfig: { ...MODEL_CONFIG, d_model: 8, n_layers: 3 }, tokenizerSha256: TOKENIZER_SHA }),
      {
        message:
          'checkpoint step 100 is incompatible: checkpoint was trained with d_model=4, n_layers=2, this config has d_model=8, n_layers=3',
      },
    );
    assert.throws(
      () => checkCompatible(meta, { modelConfig: { ...MODEL_CONFIG, tie_embeddings: true }, tokenizerSha256: TOKENIZER_SHA }),
      /trained with tie_embeddings=<unset>, this config has tie_embeddings=true/,
    );
  });

  it('reports a tokenizer mismatch', () => {
    const other = 'b'.repeat(64);
    assert.throws(() => checkCompatible(meta, { modelConfig: MODEL_CONFIG, tokenizerSha256: other }), {
      message: `checkpoint step 100 is incompatible: tokenizer mismatch: checkpoint ${TOKENIZER_SHA}, dataset ${other}`,
    });
  });
});
