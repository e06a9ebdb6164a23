// One evaluation's suites as a table, with each suite's 95 % interval where the store has one, and the
// per-paradigm or per-label accuracies as bar charts below.
import type { EvaluationSummary } from '../../../api';
import { whole } from '../format';
import { formatInterval, formatScore } from '../scores';
import { BarList } from './bar-list';
import { ScrollingTable } from './scrolling-table';

export function SuiteScores({ evaluation }: { evaluation: EvaluationSummary }) {
  const suites = Object.entries(evaluation.suites).sort(([a], [b]) => a.localeCompare(b));
  return (
    <>
      <ScrollingTable label="Suite scores">
        <thead>
          <tr>
            <th>Suite</th>
            <th>Metric</th>
            <th class="number">Score</th>
            <th>95 % interval</th>
            <th class="number">Items</th>
            <th>Other figures</th>
          </tr>
        </thead>
        <tbody>
          {suites.map(([name, score]) => (
            <tr key={name}>
              <td>{name}</td>
              <td>{score.metric}</td>
              <td class="number">{formatScore(score.metric, score.value)}</td>
              <td>{formatInterval(score) || '–'}</td>
              <td class="number">{whole(score.items)}</td>
              <td class="muted">
                {Object.entries(score.metrics)
                  .filter(([name]) => name !== score.metric)
                  .map(([name, value]) => `${name} ${formatScore(name, value)}`)
                  .join(' · ')}
              </td>
            </tr>
          ))}
        </tbody>
      </ScrollingTable>
      {suites
        .filter(([, score]) => score.groups && Object.keys(score.groups).length > 0)
        .map(([name, score]) => (
          <details key={name} open={name === 'blimp'}>
            <summary>
              {name} by {name === 'blimp' ? 'paradigm' : 'group'} ({Object.keys(score.groups!).length})
            </summary>
            <BarList label={`${name} accuracy by group`} values={score.groups!} />
          </details>
        ))}
    </>
  );
}
