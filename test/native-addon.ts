// Whether the tests that need the native kernels run. Without the addon they are skipped with the reason
// (kernels/native.ts: the build's own words from build/status.json) so a machine without a compiler can
// still run the suite; but with CI=true (or 1) a missing addon also registers a failing test, because a
// build that broke must fail CI rather than pass as a row of skipped tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadNative, nativeUnavailableReason } from '../kernels/native.js';

/** `false` when the addon loaded, else the skip reason; under CI, also a failing test that says why. */
export function nativeTestSkip(): string | false {
  if (loadNative()) return false;
  const reason = `native kernels unavailable: ${nativeUnavailableReason()}`;
  if (/^(true|1)$/i.test(process.env.CI ?? ''))
    test('the native addon is built (required with CI=true)', () => {
      assert.fail(`${reason}. With CI=true the kernel tests must run, not be skipped.`);
    });
  return reason;
}
