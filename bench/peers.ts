// The benchmarks' peers: PyTorch scripts in bench/peers/ run in the same invocation as Ringlet's figure,
// so a ratio compares two runs on the same machine minutes apart at most. They run in the venv that
// scripts/setup.sh makes (.venv, torch 2.13 from bench/peers/requirements.txt), or RINGLET_PEER_PYTHON.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../lm/model-config.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// From bench/ (sources through tsx) or dist/bench/ (compiled): the repository root is one or two levels up;
// a bundle elsewhere (the GPU check's, scripts/gpu-check.sh) names it in RINGLET_ROOT.
const root = [process.env.RINGLET_ROOT ?? '', path.join(here, '..'), path.join(here, '..', '..')].find(
  (d) => d && existsSync(path.join(d, 'bench', 'peers')),
);

export function peerPython(): string {
  if (process.env.RINGLET_PEER_PYTHON) return process.env.RINGLET_PEER_PYTHON;
  const venv = root && path.join(root, '.venv', 'bin', 'python');
  if (venv && existsSync(venv)) return venv;
  throw new Error('no Python for the PyTorch peers: run scripts/setup.sh (it makes .venv) or set RINGLET_PEER_PYTHON');
}

/** Runs bench/peers/`script` with `args` (flag → value) and returns the JSON object it prints last. */
export function runPeerScript<T>(script: string, args: Record<string, string | number>, timeoutMs = 1_800_000): T {
  if (!root) throw new Error(`bench/peers/${script} not found beside ${here}`);
  const python = peerPython();
  const argv = [path.join(root, 'bench', 'peers', script), ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const child = spawnSync(python, argv, {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
    env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
  });
  if (child.status !== 0)
    throw new Error(
      `PyTorch peer failed (${python} ${argv.join(' ')}): ${child.error?.message ?? child.stderr.trim().split('\n').at(-1)}`,
    );
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as T;
}

/** Ringlet's model dimensions as the PyTorch peers take them (bench/peers/torch_train.py add_model_args). */
export function peerModelArgs(model: ModelConfig, batch: number, steps: number, compile: boolean) {
  return {
    'd-model': model.d_model,
    'n-layers': model.n_layers,
    'n-heads': model.n_heads,
    'n-kv-heads': model.n_kv_heads,
    'ffn-hidden': model.ffn_hidden,
    context: model.context,
    vocab: model.vocab,
    'rope-theta': model.rope_theta,
    batch,
    steps,
    compile: compile ? 1 : 0,
  };
}
