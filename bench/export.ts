// `ringlet bench export`: what an exported model costs at the edge, per preset. File sizes of every
// export (GGUF f32/f16/q8_0, Hugging Face f32/f16); generation on one thread in llama.cpp (node-llama-cpp)
// against Ringlet's own lm/generate.ts in the same run, each in a process of its own so its peak resident
// memory is its own (bench/export-child.ts), alternating which goes first; and bits per byte on validation
// windows as llama.cpp computes them from each GGUF, to see what f16 and q8_0 cost in quality.
// A preset without a given checkpoint is trained for one step (its weights are then close to random:
// sizes and speeds are the preset's, its bits per byte are not a trained model's).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readCheckpoint, resolveCheckpointDir } from '../lm/checkpoint.js';
import { ModelConfigSchema, parameterCount } from '../lm/model-config.js';
import { Tokenizer } from '../lm/tokenizer.js';
import { openSplit } from '../data/shards.js';
import { exportCheckpoint } from '../export/export-checkpoint.js';
import { prebuiltLlama } from '../export/llama-cpp.js';
import { median } from './median.js';

export interface ExportBenchOptions {
  presets: string[];
  /** Trained checkpoints to use instead of one-step ones: preset → checkpoint or run folder. */
  checkpoints: Record<string, string>;
  data: string;
  repeats: number;
  windows: number;
}

const DTYPES = ['f32', 'f16', 'q8_0'] as const;
const distDir = path.resolve(import.meta.dirname, '..');
const cli = path.join(distDir, 'cli', 'ringlet.js');

function run(args: string[]): string {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${args.slice(0, 3).join(' ')} failed: ${r.stderr.slice(-2000)}`);
  return r.stdout.trim().split('\n').at(-1)!;
}

function folderBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

/** Bits per byte of the validation windows under each GGUF, as llama.cpp computes the next-token probabilities. */
async function llamaBitsPerByte(files: Record<string, string>, windows: number[][], bytesPerToken: Float64Array, vocab: number) {
  const llama = await prebuiltLlama();
  const bpb: Record<string, number> = {};
  try {
    for (const [dtype, file] of Object.entries(files)) {
      const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
      const context = await model.createContext({ contextSize: windows[0].length + 1, batchSize: windows[0].length });
      const sequence = context.getSequence();
      let nats = 0;
      let bytes = 0;
      for (const w of windows) {
        await sequence.clearHistory();
        const results = await sequence.controlledEvaluate(
          w.slice(0, -1).map((id) => [id as never, { generateNext: { probabilities: true } }]),
        );
        for (let i = 0; i + 1 < w.length; i++) {
          const p = results[i]!.next.probabilities!.get(w[i + 1] as never) ?? 1 / (vocab * 1e6);
          nats -= Math.log(p);
          bytes += bytesPerToken[w[i + 1]];
        }
      }
      bpb[dtype] = nats / Math.LN2 / bytes;
      await context.dispose();
      await model.dispose();
    }
  } finally {
    await llama.dispose();
  }
  return bpb;
}

export async function benchExport(o: ExportBenchOptions) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-bench-export-'));
  const rows = [];
  try {
    for (const preset of o.presets) {
      let source = o.checkpoints[preset];
      if (!source) {
        source = path.join(work, `${preset}-run`);
        run([
          cli,
          'train',
          '--data',
          o.data,
          '--out',
          source,
          '--preset',
          preset,
          '--max-steps',
          '1',
          '--batch-size',
          '1',
          '--json',
        ]);
      }
      const checkpointDir = await resolveCheckpointDir(source);
      const checkpoint = await readCheckpoint(checkpointDir);
      const config = ModelConfigSchema.parse(checkpoint.meta.config.model);
      const tokenizer = Tokenizer.load(checkpoint.tokenizerPath);

      const sizes: Record<string, number> = {};
      const gguf: Record<string, string> = {};
      for (const dtype of DTYPES) {
        const out = path.join(work, `${preset}-gguf-${dtype}`);
        await exportCheckpoint({ checkpoint: checkpointDir, format: 'gguf', dtype, out });
        gguf[dtype] = path.join(
          out,
          fs.readdirSync(out).find((f) => f.endsWith('.gguf'))!,
        );
        sizes[`gguf_${dtype}`] = fs.statSync(gguf[dtype]).size;
      }
      for (const dtype of ['f32', 'f16'] as const) {
        const out = path.join(work, `${preset}-hf-${dtype}`);
        await exportCheckpoint({ checkpoint: checkpointDir, format: 'hf', dtype, out });
        sizes[`hf_${dtype}`] = folderBytes(out);
      }

      // One thread each, the same prompt, the context filled once (no cache restarts on either side).
      const prompt = tokenizer.encode('It was a dark and stormy night');
      const tokens = config.context - prompt.length - 1;
      const speed: Record<string, Array<{ tokens_per_s: number; peak_rss_mib: number }>> = {
        llama_f32: [],
        llama_q8_0: [],
        ringlet: [],
      };
      for (let r = 0; r < o.repeats; r++) {
        const order =
          r % 2 === 0 ? (['ringlet', 'llama_f32', 'llama_q8_0'] as const) : (['llama_q8_0', 'llama_f32', 'ringlet'] as const);
        for (const which of order) {
          const args = which === 'ringlet' ? ['ringlet', checkpointDir] : ['llama', gguf[which === 'llama_f32' ? 'f32' : 'q8_0']];
          speed[which].push(
            JSON.parse(run([path.join(distDir, 'bench', 'export-child.js'), ...args, prompt.join(','), String(tokens)])),
          );
        }
      }
      const summary = (xs: Array<{ tokens_per_s: number; peak_rss_mib: number }>) => ({
        tokens_per_s: median(xs.map((x) => x.tokens_per_s)),
        peak_rss_mib: median(xs.map((x) => x.peak_rss_mib)),
      });

      const { tokens: val } = await openSplit(o.data, 'val');
      const T = config.context;
      const stride = Math.max(T, Math.floor((val.length - T) / o.windows));
      const windows = Array.from({ length: o.windows }, (_, i) => Array.from(val.subarray(i * stride, i * stride + T)));
      const byteLengths = Float64Array.from(tokenizer.byteLengths());
      const bpb = await llamaBitsPerByte(gguf, windows, byteLengths, config.vocab);

      const row = {
        preset,
        parameters: parameterCount(config).total,
        checkpoint: checkpointDir,
        trained_steps: checkpoint.meta.step,
        sizes_bytes: sizes,
        generated_tokens: tokens,
        ringlet: summary(speed.ringlet),
        llama_cpp_f32: summary(speed.llama_f32),
        llama_cpp_q8_0: summary(speed.llama_q8_0),
        bpb,
        q8_0_bpb_increase: bpb.q8_0 / bpb.f32 - 1,
        f16_bpb_increase: bpb.f16 / bpb.f32 - 1,
      };
      rows.push(row);
      const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
      process.stderr.write(
        `${preset} (${row.parameters.toLocaleString('en')} params, step ${row.trained_steps}): gguf ${DTYPES.map((d) => `${d} ${mb(sizes[`gguf_${d}`])}`).join(', ')}; ` +
          `hf f32 ${mb(sizes.hf_f32)}, f16 ${mb(sizes.hf_f16)}\n  1 thread, ${tokens} tokens: ringlet ${row.ringlet.tokens_per_s.toFixed(0)} tok/s ` +
          `(${row.ringlet.peak_rss_mib.toFixed(0)} MiB), llama.cpp f32 ${row.llama_cpp_f32.tokens_per_s.toFixed(0)} tok/s ` +
          `(${row.llama_cpp_f32.peak_rss_mib.toFixed(0)} MiB), q8_0 ${row.llama_cpp_q8_0.tokens_per_s.toFixed(0)} tok/s ` +
          `(${row.llama_cpp_q8_0.peak_rss_mib.toFixed(0)} MiB)\n  bpb f32 ${bpb.f32.toFixed(4)}, f16 ${bpb.f16.toFixed(4)} ` +
          `(${(row.f16_bpb_increase * 100).toFixed(3)}%), q8_0 ${bpb.q8_0.toFixed(4)} (${(row.q8_0_bpb_increase * 100).toFixed(3)}%)\n`,
      );
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const within = rows.filter((r) => r.q8_0_bpb_increase <= 0.02).sort((a, b) => a.parameters - b.parameters);
  return { rows, smallest_preset_q8_0_within_2pct_bpb: within[0]?.preset ?? null };
}
