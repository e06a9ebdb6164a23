// The story of a training run on one process: config, data, model, optimizer, loop, evaluation, checkpoint.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../kernels/backend.js';
import { readManifest } from '../data/manifest.js';
import { openSplit } from '../data/shards.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { initParams, paramsFromTensors, type Params } from '../lm/model.js';
import {
  ModelConfigSchema,
  activeParameterCount,
  flopsPerToken,
  parameterCount,
  presetConfig,
  type ModelConfig,
  modelDimensions,
} from '../lm/model-config.js';
import { checkCompatible, listCheckpoints, readCheckpoint, writeCheckpoint } from '../lm/checkpoint.js';
import { describeIssues, type TrainConfig } from './config.js';
import { AdamW } from './optimizer.js';
import { learningRate, type Schedule } from './schedule.js';
import { WindowSampler, chunkBatch, fixedWindows, type DataCursor } from './batches.js';
import { applyGradients, computeGradients } from './step.js';
import { evaluate, unigramLoss } from './evaluate.js';
import { describeRouting, routingRecord } from '../lm/moe.js';
import { ProgressLog } from './progress.js';
import { SteadyPace } from './pace.js';
import { TimeLimitHorizon } from './horizon.js';
import { TrainTelemetry, type TelemetrySummary } from '../observability/train-telemetry.js';
import { withSpan } from '../observability/tracing.js';

export interface TrainSummary {
  step: number;
  params: number;
  params_non_embedding: number;
  val_loss: number;
  val_bpb: number;
  unigram_loss: number; // validation loss of the training split's unigram distribution, for scale
  tokens_seen: number;
  tokens_per_s: number;
  /** Tokens/s from the end of the 5th step to the end of the last (train/pace.ts); null for shorter runs. */
  steady_tokens_per_s: number | null;
  gflops_per_s: number;
  elapsed_s: number;
  checkpoint: string;
  backend: string;
  /** What computed: the GPU's name on the cuda backend, else "cpu". */
  device: string;
  /** The matrix products' precision (tf32 or bf16 tensor cores, or fp32). */
  precision: string;
  interrupted: boolean;
  d_model: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  context: number;
  vocab: number;
}

/** Training state that a checkpoint must carry for an exact resume, beyond weights and moments. */
interface RunState {
  step: number;
  tokensSeen: number;
  cursor: DataCursor;
  horizonSteps: number | null; // the schedule's length in steps; null until estimated from the time limit
}

function parseCursor(value: unknown): DataCursor {
  const c = value as DataCursor;
  if (!Number.isInteger(c?.epoch) || !Number.isInteger(c?.index))
    throw new Error(`checkpoint data cursor ${JSON.stringify(value)} is not {epoch, index}`);
  return { epoch: c.epoch, index: c.index };
}

export function resolveModelConfig(config: TrainConfig, vocab: number): ModelConfig {
  const { preset, ...overrides } = config.model;
  const parsed = ModelConfigSchema.safeParse({ ...presetConfig(preset), ...overrides, vocab });
  if (!parsed.success) throw new Error(describeIssues(parsed.error, `model config (preset ${preset} with overrides)`));
  return parsed.data;
}

function toBuffers(vars: Map<string, tf.Variable>) {
  return new Map([...vars].map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]));
}

export async function train(
  config: TrainConfig,
  options: { resume: boolean; log: ProgressLog },
): Promise<TrainSummary & TelemetrySummary> {
  const { log } = options;
  const backend = await setupBackend(config.backend, { precision: config.precision });
  log.info(`backend: ${backend.description}`);

  const manifest = await readManifest(config.data);
  const tokenizerPath = path.join(config.data, manifest.tokenizer.file);
  const tokenizer = await Tokenizer.load(tokenizerPath);
  const tokenizerJson = fs.readFileSync(tokenizerPath);
  const model = resolveModelConfig(config, tokenizer.vocabSize);
  const counts = parameterCount(model);
  log.info(
    `model: ${config.model.preset} d_model=${model.d_model} n_layers=${model.n_layers} n_heads=${model.n_heads} ` +
      `n_kv_heads=${model.n_kv_heads} context=${model.context} vocab=${model.vocab}; ` +
      `${counts.total.toLocaleString('en')} parameters (${counts.nonEmbedding.toLocaleString('en')} non-embedding)` +
      (model.moe
        ? `; ${model.moe.experts} experts, top-${model.moe.top_k}: ${activeParameterCount(model).toLocaleString('en')} active`
        : ''),
  );

  const { training: t, optimizer: o } = config;
  const trainTokens = (await openSplit(config.data, 'train')).tokens;
  const valTokens = (await openSplit(config.data, 'val')).tokens;
  const sampler = new WindowSampler(trainTokens, model.context, t.seed);
  const validation = fixedWindows(valTokens, model.context, t.eval_windows);
  const byteLengths = tokenizer.byteLengths();
  const unigram = unigramLoss(trainTokens, valTokens, model.vocab);

  const tokensPerStep = t.batch_size * t.grad_accum * model.context;
  const checkpoint =
    options.resume && (await listCheckpoints(config.out)).length > 0
      ? await readCheckpoint(config.out, { withOptimizer: true })
      : null;
  if (checkpoint) checkCompatible(checkpoint.meta, { modelConfig: model, tokenizerSha256: tokenizer.sha256 });
  const params: Params = checkpoint ? paramsFromTensors(model, checkpoint.weights) : initParams(model, t.seed);
  const telemetry = await TrainTelemetry.start({
    config: config.observability,
    model,
    backend: { requested: config.backend, name: backend.name, device: backend.device, precision: backend.precision },
    carried: checkpoint?.meta.metrics, // energy and emissions of the run so far
  });
  log.info(telemetry.describePeak());
  if (telemetry.metricsUrl) log.info(`metrics: ${telemetry.metricsUrl}`);
  const optimizer = new AdamW(params, { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay });
  let state: RunState = { step: 0, tokensSeen: 0, cursor: { epoch: 0, index: 0 }, horizonSteps: t.max_steps ?? null };
  if (checkpoint) {
    optimizer.restore(checkpoint.optimizer!);
    const m = checkpoint.meta;
    state = {
      step: m.step,
      tokensSeen: m.tokens_seen,
      cursor: parseCursor(m.data_cursor),
      horizonSteps: t.max_steps ?? m.schedule_horizon_steps,
    };
    optimizer.step = state.step;
    log.info(`resumed from ${checkpoint.path} at step ${state.step} (${state.tokensSeen.toLocaleString('en')} tokens seen)`);
  }

  log.metrics?.started({
    preset: config.model.preset,
    dataset: config.data,
    parameters: counts.total,
    tokens_per_step: tokensPerStep,
    workers: 1,
    status_address: null,
    resumed_from_step: state.step,
    config,
  });

  const schedule = (): Schedule => ({
    lr: o.lr,
    minLr: o.min_lr ?? o.lr / 10,
    warmupTokens: o.warmup_steps * tokensPerStep,
    totalTokens: state.horizonSteps === null ? Infinity : state.horizonSteps * tokensPerStep,
  });

  let checkpointStep = -1;
  const saveCheckpoint = async (metrics: Record<string, number>) => {
    checkpointStep = state.step;
    const energy = await telemetry.energyNow();
    // A checkpoint written before the first evaluation has no validation figures yet: leave them out.
    const measured = Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
    metrics = { ...measured, energy_j: energy.run_energy_j, emissions_g: energy.run_emissions_g };
    return telemetry.checkpoint(state.step, () =>
      writeCheckpoint(
        config.out,
        {
          step: state.step,
          weights: toBuffers(params),
          optimizer: toBuffers(optimizer.moments()),
          meta: {
            config: { model, training: config },
            tokens_seen: state.tokensSeen,
            data_cursor: { epoch: state.cursor.epoch, index: state.cursor.index },
            // Data order is the only randomness after initialisation; its seed and the cursor reproduce it.
            rng_state: { data_order_seed: t.seed },
            schedule_horizon_steps: state.horizonSteps,
            tokenizer_sha256: tokenizer.sha256,
            backend: backend.name,
            metrics,
          },
          tokenizerJson,
        },
        config.checkpoint.keep_last,
      ),
    );
  };

  let stopSignal: string | null = null;
  const onSignal = (signal: string) => {
    stopSignal = signal;
    log.info(`${signal}: finishing this step, then writing a checkpoint`);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const flopsToken = flopsPerToken(model);
  const started = Date.now();
  const startTokens = state.tokensSeen;
  const startStep = state.step;
  const pace = new SteadyPace(startStep, tokensPerStep);
  const horizon = t.time_limit !== undefined ? new TimeLimitHorizon(startStep, t.time_limit, 1) : null;
  let lastEval: ReturnType<typeof evaluate> = { loss: NaN, bpb: NaN, routing: null };
  let checkpointPath = '';
  const runEval = () => {
    lastEval = withSpan('evaluate', { 'ringlet.step': state.step }, () =>
      evaluate(params, model, validation, t.batch_size, byteLengths),
    );
    telemetry.evaluation(lastEval.loss);
    const routing = lastEval.routing ? { routing: routingRecord(lastEval.routing) } : {};
    log.event({ step: state.step, val_loss: lastEval.loss, val_bpb: lastEval.bpb, unigram_loss: unigram }, routing);
    if (lastEval.routing) log.info(describeRouting(lastEval.routing));
  };
  const timeUp = () => t.time_limit !== undefined && (Date.now() - started) / 1000 >= t.time_limit;

  try {
    const lastStep = () => Math.min(state.horizonSteps ?? Infinity, t.until_step ?? Infinity);
    while (state.step < lastStep() && !stopSignal && !timeUp()) {
      const stepStarted = Date.now();
      const lr = learningRate(state.tokensSeen, schedule());
      const { batch, cursor } = sampler.next(t.batch_size * t.grad_accum, state.cursor);
      const { loss, gradNorm } = withSpan('train_step', { 'ringlet.step': state.step + 1 }, () => {
        const { loss, grads } = withSpan('forward_backward', {}, () =>
          computeGradients(params, model, chunkBatch(batch, t.batch_size)),
        );
        const gradNorm = withSpan('optimizer', {}, () => applyGradients(optimizer, grads, lr, o.grad_clip));
        for (const g of grads.values()) g.dispose();
        return { loss, gradNorm };
      });
      state = { ...state, step: state.step + 1, tokensSeen: state.tokensSeen + tokensPerStep, cursor };
      pace.stepEnded(state.step);
      if (!Number.isFinite(loss)) {
        telemetry.metrics.loss.set(loss); // for the NaN-loss alert, if a scrape comes before the exit
        throw new Error(`loss is ${loss} at step ${state.step}; lower the learning rate (now ${lr})`);
      }

      // With only a time limit, fix the schedule's horizon from the pace (train/horizon.ts), and keep it in
      // checkpoints.
      const estimated = state.horizonSteps === null ? horizon?.stepEnded(state.step, started) : null;
      if (estimated) {
        state.horizonSteps = estimated;
        log.info(`schedule horizon: ${state.horizonSteps} steps (estimated from the time limit)`);
      }
      const elapsed = (Date.now() - started) / 1000;
      const tokensPerS = (state.tokensSeen - startTokens) / elapsed;
      const stepS = (Date.now() - stepStarted) / 1000;
      const observed = telemetry.step({
        step: state.step,
        loss,
        lr,
        grad_norm: gradNorm,
        tokens: tokensPerStep,
        samples: t.batch_size * t.grad_accum,
        step_s: stepS,
        tokens_per_s: tokensPerS,
      });
      log.step(
        {
          step: state.step,
          horizon: state.horizonSteps,
          tokens: state.tokensSeen,
          loss,
          lr,
          grad_norm: gradNorm,
          tokens_per_s: tokensPerS,
          gflops_per_s: (tokensPerS * flopsToken) / 1e9,
          step_s: stepS,
          elapsed_s: elapsed,
          mfu: observed.mfu,
          power_w: observed.power_w,
          energy_j: observed.run_energy_j,
          emissions_g: observed.run_emissions_g,
          energy_estimated: observed.energy_estimated,
        },
        state.step % t.log_every === 0,
      );
      if (state.step % t.eval_every === 0) runEval();
      if (state.step % config.checkpoint.every === 0 && state.step < lastStep())
        // the final one follows the final evaluation
        checkpointPath = await saveCheckpoint({ val_loss: lastEval.loss, val_bpb: lastEval.bpb });
      await new Promise((resolve) => setImmediate(resolve)); // let signal handlers run between steps
    }
    if (state.step % t.eval_every !== 0 || Number.isNaN(lastEval.loss)) runEval();
    if (checkpointStep !== state.step) checkpointPath = await saveCheckpoint({ val_loss: lastEval.loss, val_bpb: lastEval.bpb });
  } catch (err) {
    await telemetry.close();
    log.metrics?.ended({ status: 'failed', step: state.step, interrupted: stopSignal !== null, error: (err as Error).message });
    throw err;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  log.info(`checkpoint: ${checkpointPath}`);
  const elapsed = (Date.now() - started) / 1000;
  const tokensPerS = elapsed > 0 ? (state.tokensSeen - startTokens) / elapsed : 0;
  const observed = await telemetry.close(tokensPerS);
  log.metrics?.ended({ status: 'finished', step: state.step, interrupted: stopSignal !== null, error: null });
  return {
    step: state.step,
    params: counts.total,
    params_non_embedding: counts.nonEmbedding,
    val_loss: lastEval.loss,
    val_bpb: lastEval.bpb,
    unigram_loss: unigram,
    tokens_seen: state.tokensSeen,
    tokens_per_s: tokensPerS,
    steady_tokens_per_s: pace.tokensPerS(),
    gflops_per_s: (tokensPerS * flopsToken) / 1e9,
    elapsed_s: elapsed,
    checkpoint: checkpointPath,
    backend: backend.name,
    device: backend.device ?? 'cpu',
    precision: backend.precision,
    interrupted: stopSignal !== null,
    ...modelDimensions(model),
    ...observed,
  };
}
