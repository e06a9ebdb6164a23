// The PyTorch peer in the GPU check: bench/peers/torch_train.py on the cases Ringlet's throughput part ran
// (same model, batch, optimizer, warm-up and timed steps), eager and torch.compile, in the order that matters
// most when the deadline cuts the list: the largest batch first (the goals are judged there), eager
// before each compile mode, larger presets first. torch.compile takes minutes per model (max-autotune most),
// so what does not fit is listed as skipped, not silently dropped.
import type { Precision } from '../../kernels/cuda/device.js';
import { flopsPerToken, type ModelConfig } from '../../lm/model-config.js';
import { peerModelArgs, runPeerScript } from '../peers.js';
import type { PeakTflops } from './throughput.js';

export interface PeerPlan {
  device: 'cuda' | 'cpu';
  presets: Array<{ name: string; config: ModelConfig }>;
  tokens: number[];
  precisions: Precision[];
  modes: string[]; // eager, or a torch.compile mode
  warmup: number;
  steps: number;
  deadline: number; // ms since the epoch
  timeoutS: number; // the most one peer run may take
  peak: (precision: Precision) => PeakTflops;
  log: (line: string) => void;
}

interface PeerCase {
  preset: string;
  tokens: number;
  precision: Precision;
  mode: string;
}

/** The cases in the order they run. */
export function peerOrder(plan: Pick<PeerPlan, 'presets' | 'tokens' | 'precisions' | 'modes'>): PeerCase[] {
  const largest = Math.max(...plan.tokens);
  const cases = plan.presets.flatMap(({ name }) =>
    plan.tokens.flatMap((tokens) =>
      plan.precisions.flatMap((precision) => plan.modes.map((mode) => ({ preset: name, tokens, precision, mode }))),
    ),
  );
  const rank = (c: PeerCase) => [
    c.tokens === largest ? 0 : 1,
    plan.modes.indexOf(c.mode),
    -plan.presets.findIndex((p) => p.name === c.preset),
    plan.precisions.indexOf(c.precision),
  ];
  return cases.sort((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    const i = ra.findIndex((v, j) => v !== rb[j]);
    return i < 0 ? 0 : ra[i] - rb[i];
  });
}

interface PeerOutput {
  torch_version: string;
  device: string;
  tokens_per_s_median: number;
  step_s_median: number;
  peak_memory_bytes?: number;
}

export function runPeers(plan: PeerPlan) {
  const cases: Array<Record<string, unknown>> = [];
  const skipped: string[] = [];
  for (const c of peerOrder(plan)) {
    const name = `${c.preset} ${c.tokens} tokens ${c.precision} ${c.mode}`;
    const left = (plan.deadline - Date.now()) / 1000;
    if (left < 5) {
      skipped.push(name);
      continue;
    }
    const config = plan.presets.find((p) => p.name === c.preset)!.config;
    const batch = Math.max(1, Math.round(c.tokens / config.context));
    plan.log(`peers: ${name}`);
    try {
      const out = runPeerScript<PeerOutput>(
        'torch_train.py',
        {
          ...peerModelArgs(config, batch, plan.steps, false),
          compile: c.mode === 'eager' ? 'none' : c.mode,
          'warmup-steps': plan.warmup,
          device: plan.device,
          precision: c.precision,
          attention: 'sdpa',
        },
        Math.min(left, plan.timeoutS) * 1000,
      );
      const tflops = (out.tokens_per_s_median * flopsPerToken(config)) / 1e12;
      const peak = plan.peak(c.precision);
      cases.push({
        ...c,
        batch,
        ...out,
        tflops,
        ...(peak.datasheet ? { mfu: tflops / peak.datasheet } : {}),
        ...(peak.gemm ? { mfu_vs_gemm: tflops / peak.gemm } : {}),
      });
    } catch (err) {
      plan.log(`peers: ${name} failed: ${(err as Error).message}`);
      cases.push({ ...c, batch, error: (err as Error).message });
    }
  }
  return { cases, skipped };
}
