// Loads Ringlet's native kernels (kernels/native: OpenBLAS sgemm and fused training kernels, built by
// node-gyp at `npm install`). Before the addon (and so OpenBLAS) loads, OPENBLAS_CORETYPE is set for this
// CPU, because OpenBLAS reads it once when the library loads, and its own CPU detection falls back to a
// slow generic core on CPUs it does not know (measured: "Prescott", no AVX, on this machine's virtual
// Xeon). If the addon is missing or fails to load, `loadNative()` returns null and the reason is printed
// once; everything then runs on the plain TensorFlow.js kernels.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type F32 = Float32Array;
type I32 = Int32Array;

/** The addon's functions (kernels/native/src/addon.cc). Output arrays are written in place. */
export interface NativeKernels {
  sgemm(
    a: F32,
    b: F32,
    c: F32,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
  ): void;
  /** y = a·x, or aᵀ·x with trans, for a row-major a [m, n] (OpenBLAS sgemv: one row times a matrix). */
  sgemv(a: F32, x: F32, y: F32, m: number, n: number, trans: boolean): void;
  rmsnormFwd(x: F32, g: F32, y: F32, rstd: F32, rows: number, d: number, eps: number): void;
  rmsnormBwd(x: F32, g: F32, rstd: F32, dy: F32, dx: F32, dg: F32, rows: number, d: number): void;
  swigluFwd(a: F32, b: F32, y: F32, n: number): void;
  swigluBwd(a: F32, b: F32, dy: F32, da: F32, db: F32, n: number): void;
  rope(x: F32, y: F32, cos: F32, sin: F32, rows: number, T: number, heads: number, hd: number, sign: number): void;
  attnFwd(q: F32, k: F32, v: F32, o: F32, lse: F32, B: number, T: number, H: number, Hkv: number, hd: number): void;
  attnBwd(
    q: F32,
    k: F32,
    v: F32,
    o: F32,
    lse: F32,
    dout: F32,
    dq: F32,
    dk: F32,
    dv: F32,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    hd: number,
  ): void;
  /** Generation's attention: T new positions (qkv [T, (H + 2·Hkv)·hd]) over a key/value cache [Hkv, cap, hd]
   * that it extends; RoPE from cos/sin [positions, hd/2] (addon.cc AttnDecode). */
  attnDecode(
    qkv: F32,
    cos: F32,
    sin: F32,
    kCache: F32,
    vCache: F32,
    o: F32,
    T: number,
    start: number,
    H: number,
    Hkv: number,
    hd: number,
    cap: number,
  ): void;
  xentFwd(logits: F32, targets: I32, loss: F32, lse: F32, rows: number, V: number): void;
  xentBwd(logits: F32, targets: I32, lse: F32, dloss: F32, dlogits: F32, rows: number, V: number): void;
  /** Output projection and cross-entropy by chunks of rows (addon.cc LinearXent); dh and dw only with withGrad. */
  linearXent(
    h: F32,
    w: F32,
    targets: I32,
    loss: F32,
    dh: F32,
    dw: F32,
    rows: number,
    d: number,
    V: number,
    withGrad: boolean,
  ): void;
  adamw(
    p: F32,
    g: F32,
    m: F32,
    v: F32,
    pOut: F32,
    mOut: F32,
    vOut: F32,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    wd: number,
    c1: number,
    c2: number,
    gscale: number,
  ): void;
  /** target += values over the first n elements (the ring all-reduce's sum); values as floats, or as the
   * little-endian bytes of floats at any byte offset. */
  addInto(target: F32, values: F32 | Uint8Array, n: number): void;
  /** GFLOP/s of each of `threads` threads running fused multiply-adds for about `seconds`. */
  fmaPeak(threads: number, seconds: number): number[];
  info(): { simd: string; blasCore: string; blasConfig: string; blasThreads: number };
  /** Switches the instruction set of the fused kernels: 'avx512', 'avx2' or 'scalar'; false if this CPU lacks it. */
  setSimd(name: string): boolean;
}

const ADDON = path.join(path.dirname(fileURLToPath(import.meta.url)), 'native', 'build', 'Release', 'ringlet_native.node');
// dist/kernels/native.js finds the addon in the source tree it was compiled from.
const ADDON_FROM_DIST = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'kernels',
  'native',
  'build',
  'Release',
  'ringlet_native.node',
);

/** Where the addon may be: RINGLET_NATIVE_ADDON (another build of it), else the build folder of the sources. */
function addonCandidates(): string[] {
  const own = process.env.RINGLET_NATIVE_ADDON;
  return own ? [path.resolve(own)] : [ADDON, ADDON_FROM_DIST];
}

/** kernels/native/build.mjs records why a build failed in build/status.json, beside the Release folder. */
const statusFileOf = (addon: string) => path.join(path.dirname(addon), '..', 'status.json');

/** Why the addon at `addon` is missing, in the words of its build's status file. */
function missingAddonReason(addon: string): string {
  const statusFile = statusFileOf(addon);
  let detail: string;
  try {
    detail = String((JSON.parse(readFileSync(statusFile, 'utf8')) as { detail?: unknown }).detail);
  } catch {
    return `not built (no ${shown(addon)}, and no build status at ${shown(statusFile)}; run npm install)`;
  }
  return `not built (no ${shown(addon)}; the build said: ${detail}, in ${shown(statusFile)})`;
}

/** A path relative to the working directory when it lies under it, else absolute. */
function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') ? file : relative;
}

let loaded: NativeKernels | null | undefined;
let unavailableReason = '';
let warned = false;

/** OpenBLAS's core type for this CPU from /proc/cpuinfo's flags: SkylakeX for AVX-512, Haswell for AVX2. */
export function detectBlasCoreType(flags: Set<string> = cpuFlags()): string | null {
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return null;
}

function cpuFlags(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

/** The addon, or null when it is not built, fails to load, or RINGLET_NATIVE=0. RINGLET_NATIVE_ADDON: load this file instead. */
export function loadNative(): NativeKernels | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.RINGLET_NATIVE === '0') {
    unavailableReason = 'disabled by RINGLET_NATIVE=0';
    return null;
  }
  const candidates = addonCandidates();
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    unavailableReason = missingAddonReason(candidates.find((f) => existsSync(statusFileOf(f))) ?? candidates[0]);
    return null;
  }
  // RINGLET_OPENBLAS_CORETYPE overrides the detection; one BLAS thread, since a worker owns one core.
  const core = process.env.RINGLET_OPENBLAS_CORETYPE || detectBlasCoreType();
  if (core) process.env.OPENBLAS_CORETYPE = core;
  process.env.OPENBLAS_NUM_THREADS = '1';
  try {
    loaded = createRequire(import.meta.url)(file) as NativeKernels;
  } catch (err) {
    unavailableReason = `failed to load ${file}: ${(err as Error).message}`;
  }
  return loaded;
}

/** Why the addon is unavailable ('' when it loaded). */
export function nativeUnavailableReason(): string {
  loadNative();
  return unavailableReason;
}

/** Prints, once per process, that the native kernels are unavailable and why. */
export function warnNativeUnavailableOnce(): void {
  if (warned || loadNative()) return;
  warned = true;
  process.stderr.write(`ringlet: native kernels unavailable (${unavailableReason}); using the plain TensorFlow.js kernels\n`);
}
