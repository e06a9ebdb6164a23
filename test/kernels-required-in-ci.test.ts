// The kernel tests cannot vanish in CI: with the native addon missing (RINGLET_NATIVE_ADDON pointed at a
// build folder whose build failed), a kernel test file run with CI=true fails and gives the build's reason;
// without CI it passes with its tests skipped and the same reason shown.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-kernels-ci-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

// A build folder as kernels/native/build.mjs leaves it when the compile fails: a status file, no addon.
const BUILD_ERROR = 'node-gyp failed: fatal error: cblas.h: No such file or directory';
fs.mkdirSync(path.join(work, 'build'));
fs.writeFileSync(path.join(work, 'build', 'status.json'), JSON.stringify({ ok: false, detail: BUILD_ERROR }) + '\n');
const missingAddon = path.join(work, 'build', 'Release', 'ringlet_native.node');

/** Runs one kernel test file against the missing addon, with CI set as given (or unset). */
function runKernelTests(ci: string | undefined) {
  // NODE_TEST_CONTEXT would make the child think it runs inside this test runner and run nothing.
  const { CI: _ci, NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', 'test/kernels-linear-xent.test.ts'],
    { cwd: root, encoding: 'utf8', env: { ...env, ...(ci === undefined ? {} : { CI: ci }), RINGLET_NATIVE_ADDON: missingAddon } },
  );
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('with CI=true a missing native addon fails the kernel tests, with the build status as the reason', () => {
  const r = runKernelTests('true');
  assert.equal(r.status, 1, r.output);
  assert.match(r.output, /✖ the native addon is built \(required with CI=true\)/);
  assert.ok(r.output.includes(`the build said: ${BUILD_ERROR}`), r.output);
  assert.match(r.output, /ℹ fail 1/);
});

test('without CI a missing native addon skips the kernel tests and says why', () => {
  const r = runKernelTests(undefined);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /ℹ fail 0/);
  assert.doesNotMatch(r.output, /ℹ skipped 0/);
  assert.ok(
    r.output.includes(`# native kernels unavailable: not built (no ${missingAddon}; the build said: ${BUILD_ERROR}`),
    r.output,
  );
});
