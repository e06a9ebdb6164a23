// A checkpoint loaded for scoring: weights as tfjs variables, its own tokenizer, and what identifies it
// (path, step, the sha256 of model.safetensors). Refuses what is not a finished checkpoint.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_FILE, readCheckpoint, type CheckpointMeta } from '../lm/checkpoint.js';
import { initParams, paramsFromTensors, type Params } from '../lm/model.js';
import { ModelConfigSchema, type ModelConfig } from '../lm/model-config.js';
import { Tokenizer } from '../lm/tokenizer.js';

export interface ScoringModel {
  /** The checkpoint folder actually read (a run folder resolves to its latest checkpoint). */
  path: string;
  meta: CheckpointMeta;
  config: ModelConfig;
  params: Params;
  tokenizer: Tokenizer;
  /** sha256 of model.safetensors: two checkpoints with the same weights have the same id. */
  modelSha256: string;
  dispose(): void;
}

/** Thrown for a checkpoint reference that names nothing, or something that is not a finished checkpoint. */
export class CheckpointRefError extends Error {}

/**
 * Loads the checkpoint at `ref` (a checkpoint folder, or a run folder for its latest). A folder named
 * `.tmp-*` (anywhere in the path) is a checkpoint being written or deleted and is refused before any file
 * is opened; readCheckpoint then checks every file's size and sha256 against meta.json.
 * With `initSeed`, the weights are replaced by a fresh initialisation (lm/model.ts initParams) of the same
 * config: the untrained baseline of the same model and tokenizer, identified as `init-seed-N`.
 */
export async function loadScoringModel(ref: string, options: { initSeed?: number } = {}): Promise<ScoringModel> {
  const absolute = path.resolve(ref);
  if (absolute.split(path.sep).some((part) => part.startsWith('.tmp-')))
    throw new CheckpointRefError(`checkpoint ${ref} is still being written (a .tmp-* folder); wait for it to be published`);
  const found = await stat(absolute).catch(() => null);
  if (!found) throw new CheckpointRefError(`unknown checkpoint ${ref}: no such file or folder`);
  if (!found.isDirectory()) throw new CheckpointRefError(`checkpoint ${ref} is not a folder`);
  let checkpoint;
  try {
    checkpoint = await readCheckpoint(absolute);
  } catch (err) {
    throw new CheckpointRefError(`cannot load checkpoint ${ref}: ${(err as Error).message}`);
  }
  const config = ModelConfigSchema.parse(checkpoint.meta.config.model);
  const tokenizer = Tokenizer.load(checkpoint.tokenizerPath);
  if (tokenizer.sha256 !== checkpoint.meta.tokenizer_sha256)
    throw new CheckpointRefError(`tokenizer in ${checkpoint.path} does not match the one the checkpoint was trained with`);
  if (tokenizer.vocabSize !== config.vocab)
    throw new CheckpointRefError(`tokenizer has ${tokenizer.vocabSize} ids, the model ${config.vocab}`);
  const fresh = options.initSeed !== undefined;
  const params = fresh ? initParams(config, options.initSeed!) : paramsFromTensors(config, checkpoint.weights);
  return {
    path: checkpoint.path,
    meta: checkpoint.meta,
    config,
    params,
    tokenizer,
    modelSha256: fresh ? `init-seed-${options.initSeed}` : checkpoint.meta.files[MODEL_FILE].sha256,
    dispose: () => params.forEach((p) => p.dispose()),
  };
}
