// The steady pace that short benchmarks report beside whole-run tokens/s (train/pace.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SteadyPace } from '../train/pace.js';

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
