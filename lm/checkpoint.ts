// Training checkpoints on disk: one directory per step holding weights, AdamW moments and verified metadata.
// Layout: <runDir>/checkpoints/step-00000100/{model.safetensors, optimizer.safetensors, tokenizer.json, meta.json},
// plus <runDir>/checkpoints/latest naming the newest directory. Directories appear and disappear only by
// rename, so a crash never leaves a partial checkpoint under a final step-* name.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { fsyncDir, writeFileAtomic, writeFileSynced } from './atomic-write.js';
import { decodeSafetensors, encodeSafetensors, type TensorMap } from './safetensors.js';

export const CHECKPOINT_FORMAT_VERSION = 1;
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const META_FILE = 'meta.json';
export const TOKENIZER_FILE = 'tokenizer.json';
const CHECKPOINTS_DIR = 'checkpoints';
const LATEST_FILE = 'latest';
const STEP_DIR_PATTERN = /^step-(\d+)$/;
// Names starting with this are in-flight writes or deletions; readers skip them.
const TMP_PREFIX = '.tmp-';

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');
const fileEntrySchema = z.object({ sha256: sha256Schema, bytes: z.number().int().nonnegative() });
const jsonObjectSchema = z.record(z.string(), z.json());

export const checkpointMetaSchema = z.object({
  format_version: z.literal(CHECKPOINT_FORMAT_VERSION),
  /** Opaque to this module except that `model` is what checkCompatible compares. */
  config: z.object({ model: jsonObjectSchema, training: jsonObjectSchema }),
  step: z.number().int().nonnegative(),
  tokens_seen: z.number().int().nonnegative(),
  data_cursor: z.json(),
  rng_state: z.json(),
  /** The schedule's length in steps, fixed once known (it may be estimated from a time limit); null if not yet. */
  schedule_horizon_steps: z.number().int().positive().nullable(),
  tokenizer_sha256: sha256Schema,
  backend: z.string().min(1),
  created_at: z.iso.datetime(),
  files: z.object({ [MODEL_FILE]: fileEntrySchema, [OPTIMIZER_FILE]: fileEntrySchema, [TOKENIZER_FILE]: fileEntrySchema }),
  metrics: z.record(z.string(), z.number()).optional(),
});

export type CheckpointMeta = z.infer<typeof checkpointMetaSchema>;

/**
 * What the caller supplies; the module fills in format_version, step, created_at and files. The opaque parts
 * are typed loosely so config interfaces fit; writeCheckpoint checks at run time that they are plain JSON.
 */
export type CheckpointMetaInput = Omit<
  CheckpointMeta,
  'format_version' | 'step' | 'created_at' | 'files' | 'config' | 'data_cursor' | 'rng_state'
> & { config: { model: object; training: object }; data_cursor: unknown; rng_state: unknown };

export interface CheckpointContent {
  step: number;
  weights: TensorMap;
  /** AdamW moments named `m.<param>` and `v.<param>`, each shaped like weight `<param>`. */
  optimizer: TensorMap;
  meta: CheckpointMetaInput;
  /** The tokenizer.json the model was trained with, so the checkpoint is usable on its own. */
  tokenizerJson: Uint8Array;
}

export interface LoadedCheckpoint {
  path: string;
  meta: CheckpointMeta;
  weights: TensorMap;
  /** null unless read with `withOptimizer: true`. */
  optimizer: TensorMap | null;
  /** The checkpoint's tokenizer.json, verified like the other files. */
  tokenizerPath: string;
}

export interface CheckpointEntry {
  step: number;
  path: string;
}

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function validateOptimizerNames(weights: TensorMap, optimizer: TensorMap): void {
  for (const [name, moment] of optimizer) {
    const match = /^[mv]\.(.+)$/.exec(name);
    if (!match) throw new Error(`optimizer tensor "${name}" must be named m.<param> or v.<param>`);
    const weight = weights.get(match[1]);
    if (!weight) throw new Error(`optimizer tensor "${name}" has no weight named "${match[1]}"`);
    if (!isDeepStrictEqual(weight.shape, moment.shape)) {
      throw new Error(`optimizer tensor "${name}" has shape [${moment.shape}], weight "${match[1]}" has [${weight.shape}]`);
    }
  }
}

/** Step directories under `<runDir>/checkpoints`, ascending by step; in-flight `.tmp-*` ones are skipped. */
export async function listCheckpoints(runDir: string): Promise<CheckpointEntry[]> {
  const dir = join(runDir, CHECKPOINTS_DIR);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const entries: CheckpointEntry[] = [];
  for (const name of names) {
    const match = STEP_DIR_PATTERN.exec(name);
    if (match && (await isDirectory(join(dir, name)))) entries.push({ step: Number(match[1]), path: join(dir, name) });
  }
  return entries.sort((a, b) => a.step - b.step);
}

// Removal goes through a rename so a crash mid-delete leaves only a .tmp-* directory behind.
async function moveAside(checkpointsDir: string, name: string): Promise<string> {
  const doomed = join(checkpointsDir, `${TMP_PREFIX}delete-${name}-${randomBytes(4).toString('hex')}`);
  await rename(join(checkpointsDir, name), doomed);
  return doomed;
}

/**
 * Writes a checkpoint atomically, points `checkpoints/latest` at it and prunes all but the `keepLast`
 * highest-step checkpoints (never the one just written). Rewriting an existing step replaces it, which
 * happens when training resumes from an older `latest`. Returns the checkpoint directory.
 *
 * `keepLast: null` writes without pruning: a distributed job prunes (pruneCheckpoints) only once every rank
 * has agreed on the new checkpoint, since until then the previous one is the job's restore point.
 */
export async function writeCheckpoint(runDir: string, content: CheckpointContent, keepLast: number | null): Promise<string> {
  if (keepLast !== null) checkKeepLast(keepLast);
  validateOptimizerNames(content.weights, content.optimizer);

  const modelBytes = encodeSafetensors(content.weights, {
    format: 'ringlet',
    step: String(content.step),
    // Embedding the model config lets model.safetensors be loaded without meta.json.
    model_config: JSON.stringify(content.meta.config.model),
  });
  const optimizerBytes = encodeSafetensors(content.optimizer, { format: 'ringlet', step: String(content.step) });
  const parsedMeta = checkpointMetaSchema.safeParse({
    ...content.meta,
    format_version: CHECKPOINT_FORMAT_VERSION,
    step: content.step,
    created_at: new Date().toISOString(),
    files: {
      [MODEL_FILE]: { sha256: sha256Hex(modelBytes), bytes: modelBytes.byteLength },
      [OPTIMIZER_FILE]: { sha256: sha256Hex(optimizerBytes), bytes: optimizerBytes.byteLength },
      [TOKENIZER_FILE]: { sha256: sha256Hex(content.tokenizerJson), bytes: content.tokenizerJson.byteLength },
    },
  });
  if (!parsedMeta.success) throw new Error(`checkpoint meta is invalid:\n${z.prettifyError(parsedMeta.error)}`);

  const checkpointsDir = join(runDir, CHECKPOINTS_DIR);
  if (!(await isDirectory(checkpointsDir))) {
    await mkdir(checkpointsDir, { recursive: true });
    await fsyncDir(runDir);
  }
  const name = checkpointDirName(content.step);
  const tmpDir = join(checkpointsDir, `${TMP_PREFIX}${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmpDir);
  const doomed: string[] = [];
  try {
    await writeFileSynced(join(tmpDir, MODEL_FILE), modelBytes);
    await writeFileSynced(join(tmpDir, OPTIMIZER_FILE), optimizerBytes);
    await writeFileSynced(join(tmpDir, TOKENIZER_FILE), content.tokenizerJson);
    await writeFileSynced(join(tmpDir, META_FILE), JSON.stringify(parsedMeta.data, null, 2) + '\n');
    await fsyncDir(tmpDir);
    // rename() cannot replace a non-empty directory, so an existing checkpoint of this step moves aside first.
    const replaced = (await isDirectory(join(checkpointsDir, name))) ? await moveAside(checkpointsDir, name) : null;
    await rename(tmpDir, join(checkpointsDir, name));
    if (replaced !== null) doomed.push(replaced);
  } catch (err) {
    await rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
  await fsyncDir(checkpointsDir);
  await writeFileAtomic(join(checkpointsDir, LATEST_FILE), name + '\n');

  const written = join(checkpointsDir, name);
  await removeDirs(checkpointsDir, doomed);
  if (keepLast !== null) await pruneCheckpoints(runDir, keepLast, written);
  return written;
}

function checkKeepLast(keepLast: number): void {
  if (!Number.isInteger(keepLast) || keepLast < 1) throw new Error(`keepLast must be an integer >= 1, got ${keepLast}`);
}

/** Removes all but the `keepLast` highest-step checkpoints, never `keep` (the newest agreed one). */
export async function pruneCheckpoints(runDir: string, keepLast: number, keep: string): Promise<void> {
  checkKeepLast(keepLast);
  const checkpointsDir = join(runDir, CHECKPOINTS_DIR);
  const others = (await listCheckpoints(runDir)).filter((entry) => entry.path !== keep);
  const doomed: string[] = [];
  for (const stale of others.reverse().slice(keepLast - 1)) doomed.push(await moveAside(checkpointsDir, basename(stale.path)));
  await removeDirs(checkpointsDir, doomed);
}

/** Deletes directories already renamed aside, after the rename is durable. */
async function removeDirs(checkpointsDir: string, doomed: string[]): Promise<void> {
  await fsyncDir(checkpointsDir);
  for (const path of doomed) await rm(path, { recursive: true, force: true });
}

/** A checkpoint directory as given, or for a run directory the one `checkpoints/latest` names, else the highest step. */
export async function resolveCheckpointDir(path: string): Promise<string> {
  if (
    await stat(join(path, META_FILE)).then(
      () => true,
      () => false,
    )
  )
    return path;
  const checkpointsDir = join(path, CHECKPOINTS_DIR);
  if (!(await isDirectory(checkpointsDir))) {
    throw new Error(`${path} is neither a checkpoint directory (no ${META_FILE}) nor a run directory (no ${CHECKPOINTS_DIR}/)`);
  }
  const latest = await readFile(join(checkpointsDir, LATEST_FILE), 'utf8').then(
    (text) => text.trim(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    },
  );
  if (latest !== null) {
    if (!STEP_DIR_PATTERN.test(latest))
      throw new Error(`${checkpointsDir}/${LATEST_FILE} holds "${latest}", not a step-NNNNNNNN name`);
    const target = join(checkpointsDir, latest);
    if (!(await isDirectory(target))) {
      throw new Error(
        `${checkpointsDir}/${LATEST_FILE} names ${latest}, which does not exist (delete ${LATEST_FILE} to use the highest step)`,
      );
    }
    return target;
  }
  const all = await listCheckpoints(path);
  if (all.length === 0) throw new Error(`run directory ${path} has no checkpoints`);
  return all[all.length - 1].path;
}

async function readVerified(dir: string, file: string, expected: z.infer<typeof fileEntrySchema>): Promise<Buffer> {
  const bytes = await readFile(join(dir, file));
  if (bytes.byteLength !== expected.bytes) {
    throw new Error(
      `checkpoint ${dir}: ${file} is ${bytes.byteLength} bytes, meta.json says ${expected.bytes} (truncated or replaced)`,
    );
  }
  const actual = sha256Hex(bytes);
  if (actual !== expected.sha256) {
    throw new Error(`checkpoint ${dir}: ${file} sha256 mismatch (expected ${expected.sha256}, got ${actual})`);
  }
  return bytes;
}

/**
 * Loads a checkpoint from its directory or from a run directory (see resolveCheckpointDir). Every file's
 * size and sha256 are checked against meta.json before decoding. Optimizer moments load only on request.
 */
export async function readCheckpoint(path: string, options: { withOptimizer?: boolean } = {}): Promise<LoadedCheckpoint> {
  const dir = await resolveCheckpointDir(path);
  let rawMeta: unknown;
  try {
    rawMeta = JSON.parse(await readFile(join(dir, META_FILE), 'utf8'));
  } catch (err) {
    throw new Error(`checkpoint ${dir}: cannot read ${META_FILE}: ${(err as Error).message}`);
  }
  const parsed = checkpointMetaSchema.safeParse(rawMeta);
  if (!parsed.success) throw new Error(`checkpoint ${dir}: ${META_FILE} is invalid:\n${z.prettifyError(parsed.error)}`);
  const meta = parsed.data;

  const modelBytes = await readVerified(dir, MODEL_FILE, meta.files[MODEL_FILE]);
  const weights = decodeSafetensors(modelBytes, join(dir, MODEL_FILE)).tensors;
  await readVerified(dir, TOKENIZER_FILE, meta.files[TOKENIZER_FILE]);
  let optimizer: TensorMap | null = null;
  if (options.withOptimizer) {
    const optimizerBytes = await readVerified(dir, OPTIMIZER_FILE, meta.files[OPTIMIZER_FILE]);
    optimizer = decodeSafetensors(optimizerBytes, join(dir, OPTIMIZER_FILE)).tensors;
  }
  return { path: dir, meta, weights, optimizer, tokenizerPath: join(dir, TOKENIZER_FILE) };
}

function describeValue(value: unknown): string {
  return value === undefined ? '<unset>' : JSON.stringify(value);
}

/**
 * Throws if the checkpoint cannot be loaded into the caller's model: any key of the model config differs,
 * or the tokenizer differs. The message names every differing key with both values.
 */
export function checkCompatible(meta: CheckpointMeta, expected: { modelConfig: object; tokenizerSha256: string }): void {
  const trained: Record<string, unknown> = meta.config.model;
  const wanted = expected.modelConfig as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(trained), ...Object.keys(wanted)])].sort();
  const differing = keys.filter((key) => !isDeepStrictEqual(trained[key], wanted[key]));
  const problems: string[] = [];
  if (differing.length > 0) {
    const side = (config: Record<string, unknown>) => differing.map((key) => `${key}=${describeValue(config[key])}`).join(', ');
    problems.push(`checkpoint was trained with ${side(trained)}, this config has ${side(wanted)}`);
  }
  if (meta.tokenizer_sha256 !== expected.tokenizerSha256) {
    problems.push(`tokenizer mismatch: checkpoint ${meta.tokenizer_sha256}, dataset ${expected.tokenizerSha256}`);
  }
  if (problems.length > 0) throw new Error(`checkpoint step ${meta.step} is incompatible: ${problems.join('; ')}`);
}
