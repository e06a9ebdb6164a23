// The fuzz loop for one service: start it, record its memory, send cases until `count` messages have gone,
// judge every answer, probe its health every 100 messages and at the end, record its memory again, stop it.
// Case i is made from its own generator seeded from (seed, service, i), so any failure can be replayed
// alone with its seed and index. The first crash ends the service's run: the process is gone.
import { messageRng } from './draw.js';
import { judge, type Verdict } from './oracle.js';
import type { Exit } from './service-process.js';
import type { FuzzService } from './target.js';

export interface FuzzOptions {
  count: number; // messages to send
  seed: number;
  deadlineMs: number; // per message: no answer by then is a hang
  index?: number; // replay this one case alone
  onFailure?: (failure: Failure) => void;
}

export interface Failure {
  service: string;
  seed: number;
  index: number; // the case: `ringlet fuzz --service S --seed N --index I` sends it again
  kind: Verdict | 'crash' | 'probe';
  what: string;
  why: string;
}

export interface ServiceResult {
  service: string;
  seed: number;
  messages: number;
  cases: number;
  answers: Record<Verdict, number>;
  not_sent: number; // refused by the client library before anything reached the server
  crashes: number;
  failed_probes: number;
  rss_before_mib: number | null;
  rss_after_mib: number | null;
  failures: Failure[];
}

const PROBE_EVERY = 100;
const MAX_FAILURES_KEPT = 50;

export async function fuzzService(service: FuzzService, o: FuzzOptions): Promise<ServiceResult> {
  const target = await service.start();
  const result: ServiceResult = {
    service: service.name,
    seed: o.seed,
    messages: 0,
    cases: 0,
    answers: { ok: 0, refused: 0, unclear: 0, hang: 0 },
    not_sent: 0,
    crashes: 0,
    failed_probes: 0,
    rss_before_mib: null,
    rss_after_mib: null,
    failures: [],
  };
  const fail = (f: Omit<Failure, 'service' | 'seed'>) => {
    const failure = { service: service.name, seed: o.seed, ...f };
    if (result.failures.length < MAX_FAILURES_KEPT) result.failures.push(failure);
    o.onFailure?.(failure);
  };
  let exit: Exit | null = null;
  void target.process.exited.then((e) => (exit = e));
  const crashed = (index: number, what: string) => {
    result.crashes += 1;
    fail({
      index,
      kind: 'crash',
      what,
      why: `the process exited (code ${exit!.code}, signal ${exit!.signal}): ${exit!.stderr.split('\n').slice(-8).join('\n')}`,
    });
  };
  const probe = async (index: number) => {
    const problem = await target.probe(o.deadlineMs);
    if (problem === null) return true;
    result.failed_probes += 1;
    fail({ index, kind: 'probe', what: 'health probe', why: problem });
    return false;
  };

  try {
    if (!(await probe(-1))) throw new Error(`${service.name} does not answer its health probe after starting`);
    result.rss_before_mib = await target.process.rssMiB();
    let nextProbe = PROBE_EVERY;
    // Until `count` messages have gone, or only case `index` when replaying.
    const done = (index: number) => (o.index === undefined ? result.messages >= o.count : index > o.index);
    for (let index = o.index ?? 0; !done(index); index++) {
      const sent = await target.send(messageRng(o.seed, service.name, index), o.deadlineMs);
      result.cases += 1;
      // An answer cut short may be the process dying: give its exit a moment to arrive.
      if (sent.some((s) => ['closed', 'reset', 'hang'].includes(s.answer.kind)))
        await Promise.race([target.process.exited, new Promise((r) => setTimeout(r, 200))]);
      if (exit) {
        crashed(index, sent.map((s) => s.what).join('; '));
        break;
      }
      for (const { what, answer, mayClose } of sent) {
        result.messages += 1;
        if (answer.kind === 'not-sent') {
          result.not_sent += 1;
          continue;
        }
        const { verdict, why } = judge(answer, { jsonErrors: target.jsonErrors, mayClose });
        result.answers[verdict] += 1;
        if (verdict === 'unclear' || verdict === 'hang') fail({ index, kind: verdict, what, why });
      }
      if (result.messages >= nextProbe) {
        nextProbe += PROBE_EVERY;
        if (!(await probe(index)) && exit) {
          crashed(index, 'health probe');
          break;
        }
      }
    }
    if (!exit && (await probe(result.cases))) result.rss_after_mib = await target.process.rssMiB();
    else if (exit && result.crashes === 0) crashed(result.cases, 'health probe at the end');
  } finally {
    await target.close();
  }
  return result;
}
