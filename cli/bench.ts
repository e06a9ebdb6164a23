// `ringlet bench`: benchmarks that print their figures (see bench/README.md).
import { Command } from 'commander';
import { benchTrainThroughput } from '../bench/train-throughput.js';
import { measurePeak } from '../bench/peak.js';
import { benchAllReduce } from '../bench/allreduce.js';
import { benchScaling } from '../bench/scaling.js';
import { benchGenerate } from '../bench/generate.js';
import { benchServe } from '../bench/serve.js';
import { benchExport } from '../bench/export.js';
import { intArg, runCommand } from './output.js';
import { PRECISIONS, type Precision } from '../kernels/cuda/device.js';

const trainBench = new Command('train')
  .description(
    'training throughput of a preset: tokens/s, achieved GFLOP/s, MFU, peak RSS, time per kernel; an MoE preset also runs its dense counterpart (cost_vs_dense_active)',
  )
  .option('--preset <name>', 'model preset', 'micro')
  .option('--backend <name>', 'wasm, cpu, cuda, tensorflow, tensorflow-gpu or auto', 'wasm')
  .option('--precision <p>', "the cuda backend's matrix products: tf32 (default), bf16 or fp32", precisionArg, 'tf32')
  .option('--batch-size <n>', 'windows per step', intArg('--batch-size'), 16)
  .option('--steps <n>', 'timed steps', intArg('--steps'), 10)
  .option('--warmup-steps <n>', 'untimed steps first', intArg('--warmup-steps'), 2)
  .option(
    '--workers <n>',
    'data-parallel worker processes, gradients averaged by the ring all-reduce every step',
    intArg('--workers'),
    1,
  )
  .option('--peer', 'also run the PyTorch peer (bench/peers/torch_train.py, 1 thread) in the same invocation')
  .option('--peer-compile', 'the PyTorch peer runs its model through torch.compile')
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, () =>
      benchTrainThroughput({
        preset: opts.preset,
        backend: opts.backend,
        precision: opts.precision,
        batchSize: opts.batchSize,
        steps: opts.steps,
        warmupSteps: opts.warmupSteps,
        workers: opts.workers,
        peer: Boolean(opts.peer),
        peerCompile: Boolean(opts.peerCompile),
      }),
    ),
  );

function precisionArg(v: string): Precision {
  if (!(PRECISIONS as readonly string[]).includes(v)) throw new Error(`--precision takes ${PRECISIONS.join(', ')} (got "${v}")`);
  return v as Precision;
}

const list = (flag: string) => (v: string) =>
  v.split(',').map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} takes positive numbers separated by commas (got "${v}")`);
    return n;
  });

const allReduceBench = new Command('allreduce')
  .description('ring all-reduce bus bandwidth on loopback against a TCP ceiling (and Gloo with --peer) in the same run')
  .option('--workers <n,...>', 'ring sizes', list('--workers'), [2, 4])
  .option('--sizes <MiB,...>', 'buffer sizes in MiB', list('--sizes'), [1, 4, 16, 64])
  .option('--iterations <n>', 'timed all-reduces per size', intArg('--iterations'), 5)
  .option('--chunk-bytes <n>', 'ring chunk size', intArg('--chunk-bytes'), 1 << 20)
  .option(
    '--bucket-bytes <n>',
    'ring bucket size (default: the whole buffer in one bucket; training uses 1 MiB)',
    intArg('--bucket-bytes'),
    0,
  )
  .option('--fp16', 'half-precision wire format')
  .option('--peer', "also run PyTorch's Gloo all-reduce (bench/peers/gloo_allreduce.py) on the same sizes")
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const r = await benchAllReduce({
        workers: opts.workers,
        sizesMiB: opts.sizes,
        iterations: opts.iterations,
        chunkBytes: opts.chunkBytes,
        bucketBytes: opts.bucketBytes,
        fp16: Boolean(opts.fp16),
        peer: Boolean(opts.peer),
      });
      const mb = (bytesPerS: number) => `${(bytesPerS / 1e6).toFixed(0).padStart(5)} MB/s`;
      for (const row of r.rows)
        process.stderr.write(
          `N=${row.workers} ${String(row.size_mib).padStart(3)} MiB  ${(row.seconds * 1000).toFixed(1).padStart(8)} ms  ` +
            `busbw ${mb(row.busbw_bytes_per_s)}  TCP ceiling ${mb(row.tcp_ceiling_bytes_per_s)} per link ` +
            `(${(100 * row.busbw_vs_tcp_ceiling).toFixed(0)}%)` +
            (row.gloo_busbw_bytes_per_s
              ? `  Gloo ${mb(row.gloo_busbw_bytes_per_s)} (ratio ${row.busbw_vs_gloo!.toFixed(2)})`
              : '') +
            '\n',
        );
      return { ...r };
    }),
  );

const peakBench = new Command('peak')
  .description("this machine's peak fp32 GFLOP/s (FMA microbenchmark), per core and all cores")
  .option('--seconds <n>', 'seconds per measurement', intArg('--seconds'), 2)
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) => runCommand(opts, async () => measurePeak(opts.seconds)));

const scalingBench = new Command('scaling')
  .description('strong scaling: tokens/s of a training job on 1 process and on 2 worker processes with the ring all-reduce')
  .option('--data <dir>', 'dataset folder from `ringlet data prepare` (default: synthetic random words)')
  .option('--preset <name>', 'model preset', 'micro')
  .option('--steps <n>', 'optimizer steps per run', intArg('--steps'), 10)
  .option('--batch-size <n>', 'global batch: windows per optimizer step, split between the 2 workers', intArg('--batch-size'), 16)
  .option('--repeats <n>', 'pairs of runs, alternating; the speedup is the median of their ratios', intArg('--repeats'), 3)
  .option('--peer', 'also run PyTorch DDP over Gloo (bench/peers/torch_ddp.py) on the same shape and batch')
  .option('--peer-compile', 'the PyTorch peer runs its model through torch.compile')
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, () =>
      benchScaling({
        data: opts.data,
        preset: opts.preset,
        steps: opts.steps,
        batchSize: opts.batchSize,
        repeats: opts.repeats,
        peer: Boolean(opts.peer),
        peerCompile: Boolean(opts.peerCompile),
      }),
    ),
  );

const generateBench = new Command('generate')
  .description('generation tokens/s and first-token time: the TensorFlow.js path against the decoder, in one invocation')
  .option('--preset <name>', 'model preset (random weights)', 'micro')
  .option('--checkpoint <path>', "a checkpoint's weights and shape instead of the preset")
  .option('--tokens <n>', 'tokens generated per run', intArg('--tokens'), 256)
  .option('--prompt-tokens <n>', 'random prompt tokens', intArg('--prompt-tokens'), 16)
  .option('--repeats <n>', 'pairs of runs (one per path), alternating which goes first', intArg('--repeats'), 5)
  .option('--backend <name>', 'wasm or cpu (the decoder runs where the native kernels do)', 'wasm')
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, () =>
      benchGenerate({
        preset: opts.preset,
        checkpoint: opts.checkpoint,
        tokens: opts.tokens,
        promptTokens: opts.promptTokens,
        repeats: opts.repeats,
        backend: opts.backend,
      }),
    ),
  );

const serveBench = new Command('serve')
  .description(
    'the playground through a real ringlet serve: first-token p50/p95, one stream, concurrent streams; ringlet generate beside it',
  )
  .option('--runs <dir>', 'folder of runs with at least one checkpoint', 'runs')
  .option('--checkpoint <id>', 'checkpoint id RUN/step-N (default: the newest of the first run)')
  .option('--requests <n>', 'sequential requests for the first-token latency', intArg('--requests'), 50)
  .option('--tokens <n>', 'tokens per stream for the throughput figures', intArg('--tokens'), 256)
  .option('--concurrency <n>', 'streams at once', intArg('--concurrency'), 8)
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, () =>
      benchServe({
        runs: opts.runs,
        checkpoint: opts.checkpoint,
        requests: opts.requests,
        tokens: opts.tokens,
        concurrency: opts.concurrency,
      }),
    ),
  );

const exportBench = new Command('export')
  .description(
    'exported models at the edge: file sizes per dtype, llama.cpp against Ringlet on one thread (tokens/s, peak RSS), bpb per GGUF dtype',
  )
  .option('--presets <names>', 'comma-separated presets', 'micro,mini,small')
  .option('--checkpoint <preset=path...>', 'a trained checkpoint (or run folder) for a preset, instead of a one-step one')
  .option(
    '--data <dir>',
    'prepared dataset: its tokenizer for one-step checkpoints, its validation split for bpb',
    'runs/data/eng',
  )
  .option('--repeats <n>', 'generation runs per runtime, alternating', intArg('--repeats'), 3)
  .option('--windows <n>', 'validation windows for bpb', intArg('--windows'), 8)
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, () => {
      const checkpoints: Record<string, string> = {};
      for (const pair of (opts.checkpoint ?? []) as string[]) {
        const [preset, ...rest] = pair.split('=');
        if (!preset || rest.length === 0) throw new Error(`--checkpoint takes preset=path (got "${pair}")`);
        checkpoints[preset] = rest.join('=');
      }
      return benchExport({
        presets: String(opts.presets).split(','),
        checkpoints,
        data: opts.data,
        repeats: opts.repeats,
        windows: opts.windows,
      });
    }),
  );

export const benchCommand = new Command('bench')
  .description('measure speed')
  .addCommand(trainBench)
  .addCommand(allReduceBench)
  .addCommand(peakBench)
  .addCommand(scalingBench)
  .addCommand(generateBench)
  .addCommand(serveBench)
  .addCommand(exportBench);
