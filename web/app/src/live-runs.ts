// The runs and one run's detail as they change: fetched, then kept current from the server's event
// streams, across reconnections.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MetricPoint, RunDetail, RunSummary } from '../../api';
import { getRun, getRuns, isAbort, watchRun, watchRuns } from './api';
import { errorMessage } from './use-request';

/** The later of two versions of a run's summary: a fetch may answer after a newer streamed one arrived. */
const newer = (known: RunSummary | undefined, candidate: RunSummary) =>
  known && (known.updated_at ?? '') > (candidate.updated_at ?? '') ? known : candidate;

export function useRunList() {
  const [runs, setRuns] = useState<Map<string, RunSummary> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  useEffect(() => {
    const controller = new AbortController();
    getRuns(controller.signal).then(
      ({ runs: list }) => {
        setRuns((known) => new Map(list.map((run) => [run.id, newer(known?.get(run.id), run)])));
        setError(null);
      },
      (failure) => isAbort(failure) || setError(errorMessage(failure)),
    );
    // The stream sends every run once on connecting, and again after a reconnection; the fetch is for
    // a first answer and for the error to show when the server is not there.
    const stop = watchRuns({
      open: () => setLive(true),
      closed: () => setLive(false),
      events: { run: (run) => setRuns((known) => new Map(known).set(run.id, newer(known?.get(run.id), run))) },
    });
    return () => {
      stop();
      controller.abort();
    };
  }, []);
  return { runs, error, live };
}

// A fast run logs many steps a second; the charts redraw at most this often.
const REDRAW_MS = 250;
// A distributed run's workers, a run's new checkpoints and the outcome of a running evaluation come only
// with the full detail, fetched again this long after a change.
const DETAIL_REFRESH_MS = 3000;

const pointKey = (point: MetricPoint) => `${point.type}:${point.step}:${point.time}`;

export function useRunDetail(id: string) {
  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [points, setPoints] = useState<MetricPoint[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const refresh = useRef(() => {});
  useEffect(() => {
    const controller = new AbortController();
    // The fetched detail and the stream overlap; a point is kept once, whichever brought it first.
    const seen = new Set<string>();
    let pending: MetricPoint[] = [];
    let flushTimer = 0;
    let refreshTimer = 0;
    const flush = () => {
      flushTimer = 0;
      const added = pending;
      pending = [];
      setPoints((known) => [...known, ...added]);
    };
    const add = (incoming: MetricPoint[]) => {
      for (const point of incoming) {
        const key = pointKey(point);
        if (seen.has(key)) continue;
        seen.add(key);
        pending.push(point);
      }
      if (pending.length && !flushTimer) flushTimer = window.setTimeout(flush, REDRAW_MS);
    };
    let current: RunDetail | null = null;
    const fetchDetail = () =>
      getRun(id, controller.signal).then(
        (answer) => {
          current = answer;
          setDetail(answer);
          setError(null);
          add(answer.metrics);
          if (answer.checkpoints.some((checkpoint) => checkpoint.evaluations.some((e) => e.status === 'running'))) refreshSoon();
        },
        (failure) => isAbort(failure) || setError(errorMessage(failure)),
      );
    const refreshSoon = () => {
      if (!refreshTimer) refreshTimer = window.setTimeout(() => ((refreshTimer = 0), fetchDetail()), DETAIL_REFRESH_MS);
    };
    refresh.current = fetchDetail;
    // The stream sends the lines written after it connected, so the detail is fetched once it has:
    // the two overlap (and `seen` drops the repeats) instead of leaving a gap.
    const stop = watchRun(id, {
      open() {
        setLive(true);
        fetchDetail();
      },
      closed() {
        setLive(false);
        // A stream the server refused (an unknown run) says nothing; the fetch brings its message.
        if (!current) fetchDetail();
      },
      events: {
        metric: (point) => add([point]),
        run(summary) {
          setDetail((known) => known && { ...known, summary });
          if (current && (current.workers !== null || summary.checkpoints !== current.checkpoints.length)) refreshSoon();
        },
      },
    });
    return () => {
      stop();
      controller.abort();
      clearTimeout(flushTimer);
      clearTimeout(refreshTimer);
    };
  }, [id]);
  return { detail, points, error, live, refresh: () => refresh.current() };
}
