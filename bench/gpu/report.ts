// The GPU check's results.json (bench/gpu/check.ts) as the Markdown bench/README.md keeps: the device, the
// verdict on each of issue 13's goals, and a table per part. scripts/gpu-check.sh writes it beside the results
// (report.md), so a session that is lent a GPU can record the figures as they came.
//
// Run: node --import tsx bench/gpu/report.ts RESULTS.json
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface Throughput {
  preset: string;
  tokens_per_step: number;
  precision: string;
  attention?: string;
  tokens_per_s?: number;
  tflops?: number;
  mfu?: number;
  mfu_vs_gemm?: number;
  peak_memory_bytes?: number;
  gpu_idle_share?: number | null;
  host_overhead_s_per_step?: number;
  step_s_median?: number;
  cpu_fallback_ops_per_step?: number;
  error?: string;
}
interface Peer {
  preset: string;
  tokens: number;
  precision: string;
  mode: string;
  tokens_per_s_median?: number;
  tflops?: number;
  mfu?: number;
  error?: string;
}
interface Part {
  status: string;
  error?: string;
  seconds: number;
  [detail: string]: unknown;
}
interface Results {
  device?: { name: string; computeCapability: string; cublas: string };
  node: string;
  parts: Record<string, Part | undefined>;
}

const pct = (x: number | null | undefined) =>
  x === undefined || x === null || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)}%`;
const num = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x)
    ? '–'
    : x.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

/** Markdown for one results.json. */
export function gpuCheckReport(r: Results): string {
  const out: string[] = [];
  const { kernels, golden, gemm, throughput, peers } = r.parts;
  out.push(
    `**${r.device?.name ?? 'no device'}** (compute capability ${r.device?.computeCapability ?? '?'}; ${r.device?.cublas ?? 'no cuBLAS'}; Node ${r.node})`,
  );
  out.push(
    table(
      ['part', 'status', 'seconds'],
      Object.entries(r.parts).map(([name, p]) => [
        name,
        p!.status + (p!.error ? `: ${p!.error.split('\n')[0]}` : ''),
        num(p!.seconds, 1),
      ]),
    ),
  );

  const ringlet = ((throughput?.cases ?? []) as Throughput[]).filter((c) => !c.error);
  const peerCases = ((peers?.cases ?? []) as Peer[]).filter((c) => !c.error);
  // The goals: correct; mini and small at or above the eager peer's MFU (moonshot: torch.compile); host overhead < 10%.
  const best = (preset: string, tokens: number, precision: string) =>
    ringlet
      .filter((c) => c.preset === preset && c.tokens_per_step === tokens && c.precision === precision)
      .sort((a, b) => (b.tokens_per_s ?? 0) - (a.tokens_per_s ?? 0))[0];
  const goals: string[][] = [];
  goals.push([
    'every kernel within tolerance',
    kernels ? `${kernels.passed} passed, ${kernels.failed} failed` : 'not run',
    kernels?.status === 'ok' ? 'met' : 'not met',
  ]);
  const fp32 = golden?.fp32 as { matches: boolean; worst: Record<string, number> } | undefined;
  goals.push([
    'the whole model matches the golden fixture (fp32)',
    fp32
      ? `worst relative deviation: ${Object.entries(fp32.worst)
          .map(([figure, x]) => `${figure} ${x.toExponential(1)}`)
          .join(', ')}`
      : 'not run',
    fp32?.matches ? 'met' : 'not met',
  ]);
  for (const peer of peerCases.filter((p) => p.mode === 'eager' && (p.preset === 'mini' || p.preset === 'small'))) {
    const own = best(peer.preset, peer.tokens, peer.precision);
    if (!own?.tokens_per_s || !peer.tokens_per_s_median) continue;
    const compiled = peerCases
      .filter((p) => p.mode !== 'eager' && p.preset === peer.preset && p.tokens === peer.tokens && p.precision === peer.precision)
      .sort((a, b) => (b.tokens_per_s_median ?? 0) - (a.tokens_per_s_median ?? 0))[0];
    const ratio = own.tokens_per_s / peer.tokens_per_s_median;
    const vsCompiled = compiled?.tokens_per_s_median
      ? `; ${num(own.tokens_per_s / compiled.tokens_per_s_median, 2)}× ${compiled.mode}`
      : '';
    goals.push([
      `${peer.preset} ${num(peer.tokens)} tokens ${peer.precision}: at or above PyTorch eager`,
      `${num(ratio, 2)}× eager (${own.attention} attention)${vsCompiled}`,
      ratio >= 1 ? 'met' : 'not met',
    ]);
  }
  for (const c of ringlet.filter(
    (c) => c.tokens_per_step >= 65536 && c.host_overhead_s_per_step !== undefined && c.step_s_median,
  ))
    goals.push([
      `${c.preset} ${num(c.tokens_per_step)} tokens ${c.precision} ${c.attention}: host overhead < 10% of the step`,
      pct(c.host_overhead_s_per_step! / c.step_s_median!),
      c.host_overhead_s_per_step! / c.step_s_median! < 0.1 ? 'met' : 'not met',
    ]);
  out.push('Goals:\n\n' + table(['goal', 'measured', 'verdict'], goals));

  if (kernels) {
    const checks = (kernels.checks ?? []) as Array<{
      kernel: string;
      shape: string;
      error: number;
      tolerance: number;
      ok: boolean;
    }>;
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0)
      out.push(
        'Kernel checks that failed:\n\n' +
          table(
            ['kernel', 'shape', 'error', 'tolerance'],
            failed.map((c) => [c.kernel, c.shape, c.error.toExponential(2), c.tolerance.toExponential(2)]),
          ),
      );
  }
  if (gemm?.tflops)
    out.push(
      `GEMM ${gemm.size}³: ${Object.entries(gemm.tflops as Record<string, number>)
        .map(([p, t]) => `${p} ${num(t, 1)} TFLOP/s`)
        .join(', ')}`,
    );
  if (ringlet.length > 0)
    out.push(
      'Ringlet (cuda backend):\n\n' +
        table(
          [
            'preset',
            'tokens/step',
            'precision',
            'attention',
            'tokens/s',
            'TFLOP/s',
            'MFU',
            'MFU vs GEMM',
            'peak memory',
            'GPU idle',
            'host ms/step',
            'CPU fallbacks/step',
          ],
          ringlet.map((c) => [
            c.preset,
            num(c.tokens_per_step),
            c.precision,
            c.attention ?? 'fused',
            num(c.tokens_per_s),
            num(c.tflops, 1),
            pct(c.mfu),
            pct(c.mfu_vs_gemm),
            c.peak_memory_bytes === undefined ? '–' : `${num(c.peak_memory_bytes / 2 ** 30, 2)} GiB`,
            pct(c.gpu_idle_share),
            num((c.host_overhead_s_per_step ?? NaN) * 1000, 1),
            num(c.cpu_fallback_ops_per_step),
          ]),
        ),
    );
  if (peerCases.length > 0)
    out.push(
      'PyTorch peer (bench/peers/torch_train.py):\n\n' +
        table(
          ['preset', 'tokens/step', 'precision', 'mode', 'tokens/s', 'TFLOP/s', 'MFU'],
          peerCases.map((c) => [
            c.preset,
            num(c.tokens),
            c.precision,
            c.mode,
            num(c.tokens_per_s_median),
            num(c.tflops, 1),
            pct(c.mfu),
          ]),
        ),
    );
  const skipped = [...((throughput?.skipped as string[]) ?? []), ...((peers?.skipped as string[]) ?? [])];
  if (skipped.length > 0) out.push(`Skipped for time: ${skipped.join('; ')}`);
  return out.join('\n\n') + '\n';
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: report RESULTS.json');
  process.stdout.write(gpuCheckReport(JSON.parse(readFileSync(file, 'utf8')) as Results));
}
