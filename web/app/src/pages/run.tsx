// One run: its figures, its curves growing live, its workers, checkpoints with scores, and its config.
import { useMemo } from 'preact/hooks';
import type { MetricPoint } from '../../../api';
import { Checkpoints } from '../components/checkpoints';
import { LineChart } from '../components/line-chart';
import { LiveIndicator } from '../components/live-indicator';
import { RunStats } from '../components/run-stats';
import { StatusBadge } from '../components/status-badge';
import { WorkersTable } from '../components/workers-table';
import { alignByTokens } from '../curves';
import { count, percent } from '../format';
import { useRunDetail } from '../live-runs';
import { href } from '../route';

function RunCharts({ points }: { points: MetricPoint[] }) {
  const loss = useMemo(
    () =>
      alignByTokens([
        { points, field: 'loss' },
        { points, field: 'val_loss' },
      ]),
    [points],
  );
  const lr = useMemo(() => alignByTokens([{ points, field: 'lr' }]), [points]);
  const gradNorm = useMemo(() => alignByTokens([{ points, field: 'grad_norm' }]), [points]);
  const speed = useMemo(
    () =>
      alignByTokens([
        { points, field: 'tokens_per_s' },
        { points, field: 'mfu' },
      ]),
    [points],
  );
  return (
    <div class="charts">
      <LineChart
        title="Loss (nats per token)"
        x={loss.x}
        series={[
          { label: 'train', values: loss.ys[0]! },
          { label: 'validation', values: loss.ys[1]! },
        ]}
      />
      <LineChart title="Learning rate" x={lr.x} series={[{ label: 'lr', values: lr.ys[0]! }]} />
      <LineChart title="Gradient norm" x={gradNorm.x} series={[{ label: 'grad norm', values: gradNorm.ys[0]! }]} />
      <LineChart
        title="Throughput"
        x={speed.x}
        series={[
          { label: 'tokens/s', values: speed.ys[0]!, format: count },
          { label: 'MFU', values: speed.ys[1]!, side: 'right', format: (value) => percent(value) },
        ]}
      />
    </div>
  );
}

export function RunPage({ id }: { id: string }) {
  const { detail, points, error, live, refresh } = useRunDetail(id);
  if (!detail)
    return (
      <>
        <h1>{id}</h1>
        {error ? <p class="error banner">{error}</p> : <p class="muted">Loading…</p>}
        <a href={href.runs()}>All runs</a>
      </>
    );
  const { summary } = detail;
  return (
    <>
      <div class="page-head">
        <h1>
          {summary.id} <StatusBadge status={summary.status} />
        </h1>
        <LiveIndicator live={live} />
      </div>
      {error && <p class="error banner">{error}</p>}
      {summary.error && <p class="error banner">The run failed: {summary.error}</p>}
      <RunStats run={summary} />
      {detail.skipped_lines > 0 && (
        <p class="muted">
          {detail.skipped_lines} line{detail.skipped_lines === 1 ? '' : 's'} of metrics.jsonl could not be read (a line the run
          was still writing, or a damaged file); the curves leave them out.
        </p>
      )}
      <h2>Curves</h2>
      <RunCharts points={points} />
      {detail.workers && (
        <>
          <h2>Workers</h2>
          <WorkersTable workers={detail.workers} />
        </>
      )}
      <h2>Checkpoints</h2>
      <Checkpoints checkpoints={detail.checkpoints} language={summary.language} onEvaluationSubmitted={refresh} />
      <h2>Config</h2>
      <details class="panel">
        <summary>The run's configuration</summary>
        <pre class="config">{JSON.stringify(detail.config, null, 2)}</pre>
      </details>
    </>
  );
}
