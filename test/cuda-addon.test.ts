// The CUDA device addon (kernels/cuda) on a machine without a GPU, as in CI: it is built (with every
// warning an error, for sm_90 with PTX), loads, implements every Device method, says "no CUDA device"
// with the CUDA runtime's reason, does not link cuBLAS, and searches for cuBLAS in the documented order,
// naming each directory it tried. Without the build the addon tests are skipped with the build's reason,
// except with CI=true, where a missing build fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  cublasSearchDirs,
  cudaAddonProblem,
  cudaBuildStatus,
  cudaDeviceCount,
  cudaUnavailableReason,
  loadCublas,
  openCudaDevice,
} from '../kernels/cuda/addon.js';

const root = path.resolve(import.meta.dirname, '..');
const addonFile = path.join(root, 'kernels', 'cuda', 'build', 'ringlet_cuda.node');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-cuda-addon-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const problem = cudaAddonProblem();
const skip = problem ? `CUDA addon unavailable: ${problem}` : false;
if (problem && /^(true|1)$/i.test(process.env.CI ?? ''))
  test('the CUDA addon is built (required with CI=true)', () => {
    assert.fail(`${skip}. With CI=true the addon must build, load and be tested.`);
  });

test('the build compiled for sm_90 with PTX, every warning an error', { skip }, () => {
  const status = cudaBuildStatus();
  assert.ok(status?.ok, JSON.stringify(status));
  const flags = status.flags ?? [];
  assert.ok(flags.includes('-gencode=arch=compute_90,code=sm_90'), flags.join(' '));
  assert.ok(flags.includes('-gencode=arch=compute_90,code=compute_90'), flags.join(' '));
  assert.ok(flags.includes('-Werror=all-warnings'), 'nvcc warnings are errors');
  assert.ok(
    flags.some((f) => f.startsWith('-Xcompiler=') && f.split(/[=,]/).includes('-Werror')),
    'host compiler warnings are errors',
  );
});

test(
  'without a GPU the addon loads, counts 0 devices and says "no CUDA device" with the runtime\'s reason',
  {
    skip: skip || (cudaDeviceCount() > 0 && 'this machine has a GPU'),
  },
  () => {
    assert.equal(cudaAddonProblem(), '');
    assert.equal(cudaDeviceCount(), 0);
    const reason = cudaUnavailableReason();
    assert.match(reason, /^no CUDA device \(cudaGetDeviceCount: .+\)$/);
    assert.throws(openCudaDevice, (err: Error) => err.message === reason);
  },
);

test('the addon links the CUDA runtime statically and opens cuBLAS at run time', { skip }, () => {
  const dynamic = spawnSync('readelf', ['-d', addonFile], { encoding: 'utf8' });
  assert.equal(dynamic.status, 0, dynamic.stderr);
  const needed = [...dynamic.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  assert.deepEqual(
    needed.filter((lib) => /cublas|cudart/.test(lib)),
    [],
    `needs ${needed.join(', ')}`,
  );
  const symbols = spawnSync('nm', ['-D', '--undefined-only', addonFile], { encoding: 'utf8' });
  assert.equal(symbols.status, 0, symbols.stderr);
  assert.doesNotMatch(symbols.stdout, /cublas/i);
  assert.match(symbols.stdout, /\bdlopen\b/);
});

test('cuBLAS not found: every directory tried is named with the reason it failed', { skip }, () => {
  const empty = path.join(work, 'empty');
  const broken = path.join(work, 'broken');
  fs.mkdirSync(empty);
  fs.mkdirSync(broken);
  fs.writeFileSync(path.join(broken, 'libcublasLt.so.13'), 'not a shared library');
  assert.throws(
    () => loadCublas([empty, broken]),
    (err: Error) =>
      err.message.startsWith('cuBLAS not found (') &&
      err.message.includes(`${empty}: ${empty}/libcublasLt.so.13: cannot open shared object file`) &&
      err.message.includes(`${broken}: ${broken}/libcublasLt.so.13: `) &&
      err.message.includes('RINGLET_CUBLAS_DIR'),
  );
});

/** A directory with an executable `python3` that runs `body` (a shell script). */
function fakePython(name: string, body: string): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'python3'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

test('cublasSearchDirs: RINGLET_CUBLAS_DIR, LD_LIBRARY_PATH, the python3 wheels, then the toolkit', () => {
  const bin = fakePython('with-wheels', 'echo /opt/py/site-packages');
  const dirs = cublasSearchDirs({
    PATH: bin,
    RINGLET_CUBLAS_DIR: '/own/cublas',
    LD_LIBRARY_PATH: '/ld/one::/ld/two',
    CUDA_HOME: '/toolkit',
  });
  assert.deepEqual(dirs, [
    '/own/cublas',
    '/ld/one',
    '/ld/two',
    '/opt/py/site-packages/nvidia/cu13/lib',
    '/opt/py/site-packages/nvidia/cublas/lib',
    '/toolkit/lib64',
    '/usr/local/cuda/lib64',
  ]);
});

test('cublasSearchDirs: after cu13 and cublas, any other NVIDIA wheel with a lib folder, in name order', () => {
  const site = path.join(work, 'site-packages');
  for (const wheel of ['cuda_runtime', 'cublas13', 'cu13'])
    fs.mkdirSync(path.join(site, 'nvidia', wheel, 'lib'), { recursive: true });
  fs.mkdirSync(path.join(site, 'nvidia', 'no_lib'));
  const bin = fakePython('with-real-wheels', `echo ${site}`);
  assert.deepEqual(cublasSearchDirs({ PATH: bin }), [
    path.join(site, 'nvidia', 'cu13', 'lib'),
    path.join(site, 'nvidia', 'cublas', 'lib'),
    path.join(site, 'nvidia', 'cublas13', 'lib'),
    path.join(site, 'nvidia', 'cuda_runtime', 'lib'),
    '/usr/local/cuda/lib64',
  ]);
});

test('cublasSearchDirs: without NVIDIA wheels (python3 fails) or python3 at all, the toolkit alone', () => {
  const bin = fakePython('without-wheels', 'echo "ModuleNotFoundError: No module named \'nvidia\'" >&2; exit 1');
  assert.deepEqual(cublasSearchDirs({ PATH: bin, CUDA_PATH: '/cuda' }), ['/cuda/lib64', '/usr/local/cuda/lib64']);
  assert.deepEqual(cublasSearchDirs({ PATH: path.join(work, 'nowhere') }), ['/usr/local/cuda/lib64']);
});

test('an addon that was not built: the reason is the build status, and opening says "no CUDA device"', () => {
  const build = path.join(work, 'failed-build');
  fs.mkdirSync(build);
  fs.writeFileSync(path.join(build, 'status.json'), JSON.stringify({ ok: false, detail: 'nvcc not found' }) + '\n');
  const script = [
    `import { cudaUnavailableReason, openCudaDevice, cudaDeviceCount } from '${path.join(root, 'kernels/cuda/addon.ts')}';`,
    'let opened = "";',
    'try { openCudaDevice(); } catch (err) { opened = err.message; }',
    'console.log(JSON.stringify({ reason: cudaUnavailableReason(), opened, count: cudaDeviceCount() }));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, RINGLET_CUDA_ADDON: path.join(build, 'ringlet_cuda.node') },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { reason: string; opened: string; count: number };
  const expected = 'no CUDA device (the CUDA addon is not built (the build said: nvcc not found))';
  assert.deepEqual(out, { reason: expected, opened: expected, count: 0 });
});
