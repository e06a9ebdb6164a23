// The steady pace that short benchmarks report beside whole-run tokens/s (train/pace.ts), and the schedule
// horizon a time limit fixes from the pace of the first steps (train/horizon.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SteadyPace } from '../train/pace.js';
import { TimeLimitHorizon } from '../train/horizon.js';

test('steady tokens/s counts from the end of the 5th step to the last, and nothing after a rollback', () => {
  const pace = new SteadyPace(100, 1000); // a run resumed at step 100, 1000 tokens a step
  pace.stepEnded(101, 0);
  for (let step = 102; step <= 105; step++) pace.stepEnded(step, 5000); // slow first steps: left out
  assert.equal(pace.tokensPerS(), null, 'nothing to measure before the 6th step');
  for (let step = 106; step <= 110; step++) pace.stepEnded(step, 5000 + (step - 105) * 250);
  assert.equal(pace.tokensPerS(), 4000); // 5 steps of 1000 tokens in 1.25 s
  pace.stepEnded(108, 7000); // the ring re-formed and restored step 107's checkpoint
  assert.equal(pace.tokensPerS(), null);
});

test('TimeLimitHorizon: the pace of steps 5-15 after the start fixes the horizon once, at least minAhead ahead', () => {
  const started = 1_000_000;
  // Resumed at step 100, a 60 s limit; step k of this run ends at 1 s + k x 0.5 s.
  const h = new TimeLimitHorizon(100, 60, 2);
  const at = (k: number) => h.stepEnded(100 + k, started, started + 1000 + k * 500);
  for (let k = 1; k < 15; k++) assert.equal(at(k), null, `step ${k}`);
  // At step 15: 0.5 s a step, 60 - 8.5 = 51.5 s left: 103 more steps.
  assert.equal(at(15), 115 + 103);
  assert.equal(at(16), null, 'decided once');
  const late = new TimeLimitHorizon(0, 10, 2); // the time is already up: still minAhead steps on
  for (let k = 1; k < 15; k++) late.stepEnded(k, started, started + k * 1000);
  assert.equal(late.stepEnded(15, started, started + 15_000), 17);
});
