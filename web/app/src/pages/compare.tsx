// Two or more runs on one chart (bits per byte by default: fair across tokenizers), their newest
// evaluations side by side, and the store's paired differences between them.
import { useMemo, useState } from 'preact/hooks';
import type { Comparison, RunDetail } from '../../../api';
import { getComparison } from '../api';
import { LineChart } from '../components/line-chart';
import { PairedDifferences } from '../components/paired-differences';
import { RunPicker } from '../components/run-picker';
import { ScrollingTable } from '../components/scrolling-table';
import { alignByTokens, type MetricField } from '../curves';
import { whole } from '../format';
import { formatInterval, formatScore, latestEvaluatedCheckpoint, latestEvaluation } from '../scores';
import { useRequest } from '../use-request';

const METRICS: Array<{ field: MetricField; label: string }> = [
  { field: 'val_bpb', label: 'Validation bits per byte' },
  { field: 'val_loss', label: 'Validation loss (nats per token)' },
  { field: 'loss', label: 'Training loss (nats per token)' },
];

function CompareChart({ runs }: { runs: RunDetail[] }) {
  const [field, setField] = useState<MetricField>('val_bpb');
  const metric = METRICS.find((option) => option.field === field)!;
  const curves = useMemo(() => alignByTokens(runs.map((run) => ({ points: run.metrics, field }))), [runs, field]);
  return (
    <>
      <div class="toolbar">
        <label for="compare-metric" class="inline">
          Metric
        </label>
        <select
          id="compare-metric"
          value={field}
          class="auto-width"
          onChange={(e) => setField(e.currentTarget.value as MetricField)}
        >
          {METRICS.map((option) => (
            <option key={option.field} value={option.field}>
              {option.label}
            </option>
          ))}
        </select>
      </div>
      <LineChart
        title={metric.label}
        x={curves.x}
        series={runs.map((run, i) => ({ label: run.summary.id, values: curves.ys[i]! }))}
        height={300}
      />
    </>
  );
}

function EvaluationsSideBySide({ runs }: { runs: RunDetail[] }) {
  const columns = runs.map((run) => {
    const checkpoint = latestEvaluatedCheckpoint(run.checkpoints);
    return { run, checkpoint, evaluation: checkpoint && latestEvaluation(checkpoint) };
  });
  const suites = [...new Set(columns.flatMap((column) => Object.keys(column.evaluation?.suites ?? {})))].sort();
  if (suites.length === 0) return <p class="muted">None of these runs has an evaluated checkpoint yet.</p>;
  return (
    <div class="side-by-side">
      <ScrollingTable label="Evaluations side by side">
        <thead>
          <tr>
            <th>Suite</th>
            {columns.map(({ run, checkpoint }) => (
              <th key={run.summary.id} class="number">
                {run.summary.id}
                <br />
                <span class="muted">{checkpoint ? `step ${whole(checkpoint.step)}` : 'not evaluated'}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {suites.map((suite) => (
            <tr key={suite}>
              <td>{suite}</td>
              {columns.map(({ run, evaluation }) => {
                const score = evaluation?.suites[suite];
                return (
                  <td key={run.summary.id} class="number">
                    {score ? formatScore(score.metric, score.value) : '–'}
                    {score && formatInterval(score) && <small>{formatInterval(score)}</small>}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </ScrollingTable>
    </div>
  );
}

/** A suite's metric name as any of the compared runs' evaluations report it. */
function metricFinder(comparison: Comparison) {
  return (suite: string) => {
    for (const run of comparison.runs)
      for (const checkpoint of run.checkpoints)
        for (const evaluation of checkpoint.evaluations) {
          const score = evaluation.suites[suite];
          if (score) return score.metric;
        }
    return suite;
  };
}

export function ComparePage({ ids }: { ids: string[] }) {
  const comparison = useRequest(
    (signal) => (ids.length >= 2 ? getComparison(ids, signal) : Promise.resolve(null)),
    [ids.join(',')],
  );
  const data = ids.length >= 2 ? comparison.data : null;
  return (
    <>
      <div class="page-head">
        <h1>Compare</h1>
        {ids.length >= 2 && (
          <button type="button" onClick={comparison.reload} disabled={comparison.loading}>
            {comparison.loading ? 'Loading…' : 'Refresh'}
          </button>
        )}
      </div>
      <RunPicker ids={ids} />
      {ids.length < 2 && <p>Pick two or more runs: add them here, or tick them on the runs page.</p>}
      {ids.length >= 2 && comparison.error && <p class="error banner">{comparison.error}</p>}
      {data && (
        <>
          <CompareChart runs={data.runs} />
          <h2>Evaluations</h2>
          <EvaluationsSideBySide runs={data.runs} />
          <h2>Paired differences</h2>
          {data.pairs.length > 0 ? (
            <PairedDifferences pairs={data.pairs} metricOf={metricFinder(data)} />
          ) : (
            <p class="muted">
              The evaluator's store has no paired comparison of these runs' checkpoints (both need the same suite scored item by
              item).
            </p>
          )}
        </>
      )}
    </>
  );
}
