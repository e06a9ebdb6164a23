// Times the native causal-attention kernels (attnFwd, attnBwd in kernels/native) on the attention shapes
// of the model presets, batch 16, at the addon's best SIMD level, and prints ms and GFLOP/s.
// FLOPs count only the causal half: the forward pass does two products (q·kᵀ and p·v) of 2·hd FLOPs per
// (query, key) pair, fwd = 2·2·B·H·(T(T+1)/2)·hd; the backward pass does five (q·kᵀ again, do·vᵀ, pᵀ·do,
// ds·k, dsᵀ·q), bwd = 2.5·fwd. The exponentials are not counted.
// Run: node --import tsx bench/attention.ts [--repeats N] [--baseline OTHER.node]
// --baseline loads a second build of the addon (e.g. a copy of an older ringlet_native.node) and times it
// in the same rounds, alternating with the current build, so both see the same machine load.
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { loadNative, nativeUnavailableReason, type NativeKernels } from '../kernels/native.js';
import { Rng } from '../lm/rng.js';

interface Shape {
  label: string;
  B: number;
  T: number;
  H: number;
  Hkv: number;
  hd: number;
}

const SHAPES: Shape[] = [
  { label: 'micro', B: 16, T: 128, H: 4, Hkv: 4, hd: 32 },
  { label: 'tiny (GQA)', B: 16, T: 256, H: 6, Hkv: 2, hd: 32 },
  { label: 'mini', B: 16, T: 256, H: 8, Hkv: 8, hd: 32 },
  { label: 'small (GQA)', B: 16, T: 256, H: 8, Hkv: 4, hd: 64 },
];

const { values } = parseArgs({ options: { repeats: { type: 'string', default: '7' }, baseline: { type: 'string' } } });
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${values.repeats}`);
const current = loadNative();
if (!current) throw new Error(`bench attention needs the native kernels: ${nativeUnavailableReason()}`);
// loadNative() has set OPENBLAS_CORETYPE, so the baseline shares the same OpenBLAS set-up.
const builds: Array<[string, NativeKernels]> = [['current', current]];
if (values.baseline) builds.unshift(['baseline', createRequire(import.meta.url)(values.baseline) as NativeKernels]);

function randomArray(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Milliseconds of one call. */
function time(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

const info = current.info();
console.log(`simd ${info.simd}, OpenBLAS ${info.blasCore} (${info.blasThreads} thread); best of ${repeats} calls per cell`);
console.log('shape        B  T   H Hkv hd | build    | fwd ms  GFLOP/s | bwd ms  GFLOP/s | rel. diff vs first build');
const rng = new Rng(1);
for (const s of SHAPES) {
  const { B, T, H, Hkv, hd } = s;
  const fwdFlops = 2 * 2 * B * H * ((T * (T + 1)) / 2) * hd;
  const bwdFlops = 2.5 * fwdFlops;
  const q = randomArray(rng, B * T * H * hd);
  const k = randomArray(rng, B * T * Hkv * hd);
  const v = randomArray(rng, B * T * Hkv * hd);
  const dout = randomArray(rng, q.length);
  const outs = builds.map(() => ({
    o: new Float32Array(q.length),
    lse: new Float32Array(B * H * T),
    dq: new Float32Array(q.length),
    dk: new Float32Array(k.length),
    dv: new Float32Array(v.length),
  }));
  const best = builds.map(() => ({ fwd: Infinity, bwd: Infinity }));
  // One warm-up round, then `repeats` rounds; within a round the builds alternate.
  for (let round = 0; round <= repeats; round++)
    builds.forEach(([, n], i) => {
      const { o, lse, dq, dk, dv } = outs[i];
      const fwd = time(() => n.attnFwd(q, k, v, o, lse, B, T, H, Hkv, hd));
      const bwd = time(() => n.attnBwd(q, k, v, o, lse, dout, dq, dk, dv, B, T, H, Hkv, hd));
      if (round === 0) return;
      best[i].fwd = Math.min(best[i].fwd, fwd);
      best[i].bwd = Math.min(best[i].bwd, bwd);
    });
  const dims = `${s.label.padEnd(12)} ${String(B).padStart(2)} ${String(T).padStart(3)} ${String(H).padStart(2)} ${String(Hkv).padStart(3)} ${String(hd).padStart(2)}`;
  builds.forEach(([name], i) => {
    const gflops = (flops: number, ms: number) => (flops / ms / 1e6).toFixed(1).padStart(7);
    // max |a − b| / max |b| over o, dq, dk and dv, as test/kernels-native.test.ts measures error.
    const diff = Math.max(...(['o', 'dq', 'dk', 'dv'] as const).map((key) => relDiff(outs[i][key], outs[0][key])));
    console.log(
      `${dims} | ${name.padEnd(8)} | ${best[i].fwd.toFixed(2).padStart(6)} ${gflops(fwdFlops, best[i].fwd)} | ` +
        `${best[i].bwd.toFixed(2).padStart(6)} ${gflops(bwdFlops, best[i].bwd)} | ${diff.toExponential(1)}`,
    );
  });
  if (builds.length === 2) {
    const ratio = (key: 'fwd' | 'bwd') => `${(best[0][key] / best[1][key]).toFixed(1)}x`.padStart(7);
    console.log(`${dims} | speed-up | ${ratio('fwd').padStart(14)} | ${ratio('bwd').padStart(14)} |`);
  }
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}
