// The CPU image, built from deploy/images/Dockerfile by scripts/build-image.sh (mmdebstrap + buildah, no Docker
// engine), answers `ringlet --version`, passes its HEALTHCHECK against `ringlet serve`, and trains 3 steps inside
// itself with the native kernels. About 4 minutes from cold on 2 cores, so it runs in the suite (issue 14: in CI
// if it fits in 10 minutes). Needs root, as CI runs; elsewhere it says why and skips, except under CI=true.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..');
const version: string = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const notRoot = process.getuid?.() !== 0 ? 'building the image needs root (buildah chroot isolation, mmdebstrap)' : null;
if (notRoot && process.env.CI === 'true') throw new Error(`CI must build the image: ${notRoot}`);

test(
  'the CPU image builds with buildah, reports its version, is healthy and trains inside itself',
  { skip: notRoot ?? false, timeout: 15 * 60_000 },
  () => {
    const r = spawnSync('bash', [path.join(root, 'scripts/build-image.sh')], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 256 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Without the test runner's marker, so the script's own `node` calls run as plain scripts.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')),
    });
    const tail = `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`;
    assert.equal(r.status, 0, tail);
    assert.match(r.stdout, new RegExp(`^--version: +${version.replace(/\./g, '\\.')}$`, 'm'), tail);
    assert.match(r.stdout, /^healthcheck: +healthy after \d+ tries$/m, tail);
    assert.match(r.stdout, /^native: +true$/m, tail);
    const train = /^train \(\d+s\): (.*)$/m.exec(r.stdout)?.[1] ?? '';
    const summary = JSON.parse(train.slice(train.indexOf('{')));
    assert.equal(summary.step, 3, tail);
    assert.deepEqual([summary.samples_skipped, summary.samples_repeated], [0, 0]);
  },
);
