// The coordinator fuzzer's calls, made from the fuzz session's members (coordinator-session.ts): valid
// requests of each method (the bases the generic gRPC cases mutate), each method's fields made wrong (NaN,
// infinities, 2^53, wrong epochs, ranks, steps and windows, huge strings), and calls out of order (a
// report before joining, a step skipped, a barrier for a step never reported, a second Watch, a report
// after leaving), now and then the order a ring keeps.
import type { Rng } from '../../lm/rng.js';
import {
  CoordinatorServiceService as Methods,
  type ReportStepRequest,
} from '../../proto/gen/ringlet/coordinator/v1/coordinator.js';
import { JOB } from './coordinator-fixture.js';
import type { CoordinatorSession, Member } from './coordinator-session.js';
import { EXTREME_DOUBLES, chance, pick, randomText } from './draw.js';

export type Method = keyof typeof Methods;
export type Call = { method: Method; request: object; what: string };

/** Valid requests of each method for member `m`, the bases of generic cases. */
export function bases(session: CoordinatorSession, rng: Rng, m: Member): Array<[Method, object]> {
  const join = { jobId: JOB.id, collectiveAddress: `127.0.0.1:${30000 + rng.int(30000)}`, workerName: 'fuzz', host: '' };
  const heartbeat = { jobId: JOB.id, workerId: m.workerId, ringEpoch: m.epoch, step: m.lastStep, ringError: '' };
  return [
    ['join', join],
    ['heartbeat', heartbeat],
    ['reportStep', session.report(m)],
    ['reportStep', session.report(m)],
    ['checkpointBarrier', session.barrierRequest(m)],
    ['leave', { jobId: JOB.id, workerId: chance(rng, 0.1) ? m.workerId : session.stranger(), reason: 'fuzz' }],
    ['watch', { jobId: JOB.id, workerId: chance(rng, 0.5) ? m.workerId : session.stranger() }],
  ];
}

/** A valid call of some method with one field made wrong. */
export function badField(session: CoordinatorSession, rng: Rng, m: Member): Call {
  const report = session.report(m);
  const reportWith = (what: string, change: Partial<ReportStepRequest>): Call => ({
    method: 'reportStep',
    request: { ...report, ...change },
    what,
  });
  const number = pick(rng, EXTREME_DOUBLES);
  const text = (n: number) => randomText(rng, n);
  const cases: Call[] = [
    reportWith(`loss ${number}`, { loss: number }),
    reportWith(`grad norm ${number}`, { gradNorm: number }),
    reportWith(`lr ${number}`, { lr: number }),
    reportWith(`compute ms ${number}`, { computeMs: number }),
    reportWith(`all-reduce ms ${number}`, { allreduceMs: number }),
    reportWith(`host energy ${number} J`, { hostEnergyJ: number, hostEnergySource: 'rapl' }),
    reportWith('a random energy source', { hostEnergyJ: 1, hostEnergySource: text(64) }),
    reportWith('a 1 MiB energy source', { hostEnergyJ: 1, hostEnergySource: 'x'.repeat(1 << 20) }),
    reportWith('step 2^53-1', { step: 2 ** 53 - 1 }),
    reportWith('step 0', { step: 0 }),
    reportWith('the step after next', { step: m.lastStep + 2 }),
    reportWith('the step already reported', { step: m.lastStep }),
    reportWith('a stale epoch', { ringEpoch: m.epoch - 1 }),
    reportWith('a future epoch', { ringEpoch: m.epoch + 1 }),
    reportWith('another rank', { rank: m.rank + 1 }),
    reportWith('rank 2^32-1', { rank: 0xffffffff }),
    reportWith('no windows', { windows: [] }),
    reportWith('its windows twice', { windows: [...report.windows, ...report.windows] }),
    reportWith('100,000 windows', { windows: Array(100_000).fill(report.windows[0]) }),
    reportWith('a window of 2^32-1', { windows: [{ epoch: 0, start: 0, count: 0xffffffff }] }),
    reportWith('a window at 2^53-1', { windows: [{ epoch: 0xffffffff, start: 2 ** 53 - 1, count: 1 }] }),
    reportWith('another job', { jobId: 'another-job' }),
    reportWith('an unknown worker', { workerId: session.stranger() }),
    reportWith('a 1 MiB worker id', { workerId: 'w'.repeat(1 << 20) }),
    {
      method: 'join',
      request: { jobId: JOB.id, collectiveAddress: text(20), workerName: 'fuzz', host: '' },
      what: 'a random collective address',
    },
    {
      method: 'join',
      request: { jobId: JOB.id, collectiveAddress: '127.0.0.1:99999', workerName: 'fuzz', host: '' },
      what: 'port 99999',
    },
    { method: 'join', request: { jobId: JOB.id, collectiveAddress: '', workerName: '', host: '' }, what: 'no address' },
    {
      method: 'join',
      request: { jobId: JOB.id, collectiveAddress: `${'h'.repeat(100_000)}:1`, workerName: 'fuzz', host: '' },
      what: 'a 100 KB host name',
    },
    {
      method: 'join',
      request: { jobId: JOB.id, collectiveAddress: '127.0.0.1:1', workerName: 'n'.repeat(1 << 20), host: 'h'.repeat(256) },
      what: 'a 1 MiB name, a 256-character host',
    },
    {
      method: 'join',
      request: { jobId: text(40), collectiveAddress: '127.0.0.1:1', workerName: 'fuzz', host: '' },
      what: 'a random job',
    },
    {
      method: 'heartbeat',
      request: { jobId: JOB.id, workerId: m.workerId, ringEpoch: 0xffffffff, step: 2 ** 53 - 1, ringError: '' },
      what: 'epoch and step at their limits',
    },
    {
      method: 'heartbeat',
      request: { jobId: JOB.id, workerId: m.workerId, ringEpoch: m.epoch - 1, step: 0, ringError: text(200) },
      what: 'a ring error for a stale epoch',
    },
    {
      method: 'leave',
      request: { jobId: JOB.id, workerId: session.stranger(), reason: 'r'.repeat(1 << 20) },
      what: 'a 1 MiB reason',
    },
    { method: 'watch', request: { jobId: '', workerId: '' }, what: 'no job, no worker' },
    {
      method: 'checkpointBarrier',
      request: { ...session.barrierRequest(m), step: m.lastStep + 1000 },
      what: 'a barrier for a step never reported',
    },
    {
      method: 'checkpointBarrier',
      request: { ...session.barrierRequest(m), step: 2 ** 53 - 1 },
      what: 'a barrier at step 2^53-1',
    },
    {
      method: 'checkpointBarrier',
      request: { ...session.barrierRequest(m), hostEnergyJ: number },
      what: `barrier energy ${number} J`,
    },
    {
      method: 'checkpointBarrier',
      request: {
        ...session.barrierRequest(m),
        metrics: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`m${i}`, i])),
      },
      what: 'a barrier with 10,000 metrics',
    },
  ];
  return pick(rng, cases);
}

/** Calls in an order a worker would not send them (or, now and then, the order it would). */
export function sequence(session: CoordinatorSession, rng: Rng, m: Member, ring: Member[]): Array<Call | Call[]> {
  const everyRank = (what: string, make: (x: Member) => object, method: Method): Call[] =>
    ring.map((x) => ({ method, request: make(x), what }));
  const cases: Array<[number, () => Array<Call | Call[]>]> = [
    [4, () => [everyRank('a valid step', (x) => session.report(x), 'reportStep')]],
    [2, () => [everyRank('a valid checkpoint barrier', (x) => session.barrierRequest(x), 'checkpointBarrier')]],
    [1, () => [everyRank('the final barrier', (x) => session.barrierRequest(x, true), 'checkpointBarrier')]],
    [
      2,
      () => [
        {
          method: 'reportStep',
          request: { ...session.report(m), workerId: session.stranger() },
          what: 'a report before joining',
        },
      ],
    ],
    [2, () => [[reportCall(session, m, 'the same report'), reportCall(session, m, 'twice at once')]]],
    [
      2,
      () => [
        {
          method: 'checkpointBarrier',
          request: { ...session.barrierRequest(m), step: m.lastStep + 1 },
          what: 'a barrier before its step is reported',
        },
      ],
    ],
    [2, () => [{ method: 'watch', request: { jobId: JOB.id, workerId: m.workerId }, what: 'a second Watch' }]],
    [
      1,
      () => [
        { method: 'leave', request: { jobId: JOB.id, workerId: m.workerId, reason: 'fuzz' }, what: 'leaving' },
        reportCall(session, m, 'a report after leaving'),
      ],
    ],
    [
      1,
      () => [
        {
          method: 'heartbeat',
          request: {
            jobId: JOB.id,
            workerId: m.workerId,
            ringEpoch: m.epoch,
            step: m.lastStep,
            ringError: 'fuzz: a peer sent garbage',
          },
          what: 'a ring error',
        },
        reportCall(session, m, 'a report in the aborted epoch'),
      ],
    ],
    [
      1,
      () => [
        {
          method: 'join',
          request: { jobId: JOB.id, collectiveAddress: '127.0.0.1:20000', workerName: 'fuzz', host: '' },
          what: 'an address already joined',
        },
      ],
    ],
  ];
  const total = cases.reduce((s, [w]) => s + w, 0);
  let r = rng.int(total);
  for (const [weight, make] of cases) if ((r -= weight) < 0) return make();
  return cases[0][1]();
}

export function reportCall(session: CoordinatorSession, m: Member, what: string): Call {
  return { method: 'reportStep', request: session.report(m), what };
}
