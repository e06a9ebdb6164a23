// The ring the collective fuzzer talks to: rank 1 of a two-rank ring, all-reducing one 64-float buffer
// (one bucket, two 32-float segments, one chunk each) step after step, while the fuzzer plays rank 0.
// `validChunks` is what rank 0 sends for one step, in the order the ring's schedule fixes
// (collective/ring-allreduce.ts): its reduce-scatter segment, then the segment it owns for the all-gather.
import { Encoding, Phase, type ExchangeRequest } from '../../proto/gen/ringlet/collective/v1/collective.js';

export const RING = {
  jobId: 'fuzz-ring',
  bufferElements: 64,
  maxChunkBytes: 4096, // the endpoint's chunk limit; messages may be 4 KiB more
  maxQueuedBytes: 16384, // per inbox, before its consumer takes the chunks
  chunkTimeoutMs: 60_000, // the ring gives up on a step after this long without a chunk (the fuzzer moves it on first)
};

/** The two chunks rank 0 sends rank 1 for `step` of ring epoch `epoch`, with `fill` as every float. */
export function validChunks(epoch: number, step: number, fill = 1): ExchangeRequest[] {
  const half = RING.bufferElements / 2;
  const data = new Uint8Array(new Float32Array(half).fill(fill).buffer);
  const chunk = (phase: Phase, segment: number): ExchangeRequest => ({
    jobId: RING.jobId,
    ringEpoch: epoch,
    fromRank: 0,
    step,
    bucket: 0,
    bucketElements: RING.bufferElements,
    phase,
    round: 0,
    segment,
    offset: segment * half,
    encoding: Encoding.ENCODING_FP32,
    data,
  });
  return [chunk(Phase.PHASE_REDUCE_SCATTER, 0), chunk(Phase.PHASE_ALL_GATHER, 1)];
}
