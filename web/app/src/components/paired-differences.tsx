// The store's paired-bootstrap comparisons: b − a in the mean item score of each suite (higher is
// better: accuracy, or minus nats per window for val) with its 95 % interval, drawn around a zero line so
// a reader sees at once whether the interval leaves zero out.
import type { Comparison } from '../../../api';
import { formatDifference } from '../scores';
import { ScrollingTable } from './scrolling-table';

interface Props {
  pairs: Comparison['pairs'];
  /** The metric each suite reports: an accuracy's difference reads in percentage points. */
  metricOf(suite: string): string;
}

export function PairedDifferences({ pairs, metricOf }: Props) {
  // One scale for every row, so their intervals can be compared by eye.
  const reach = Math.max(...pairs.flatMap((pair) => [Math.abs(pair.ci_low), Math.abs(pair.ci_high)]), 1e-12);
  const position = (value: number) => `${50 + (value / reach) * 48}%`;
  return (
    <ScrollingTable label="Paired differences">
      <thead>
        <tr>
          <th>Suite</th>
          <th>b − a</th>
          <th class="number">Difference in item score</th>
          <th>95 % interval</th>
          <th>
            <span class="sr-only">Interval drawn around zero</span>
          </th>
          <th>Verdict</th>
        </tr>
      </thead>
      <tbody>
        {pairs.map((pair) => {
          const metric = metricOf(pair.suite);
          const clear = pair.ci_low > 0 || pair.ci_high < 0;
          return (
            <tr key={`${pair.a}|${pair.b}|${pair.suite}`}>
              <td>{pair.suite}</td>
              <td>
                {pair.b} − {pair.a}
              </td>
              <td class="number">{formatDifference(metric, pair.difference)}</td>
              <td>
                [{formatDifference(metric, pair.ci_low)}, {formatDifference(metric, pair.ci_high)}]
              </td>
              <td>
                <div class="interval" aria-hidden="true">
                  <span class="zero" />
                  <span
                    class="range"
                    style={{ left: position(pair.ci_low), width: `calc(${position(pair.ci_high)} - ${position(pair.ci_low)})` }}
                  />
                  <span class="point" style={{ left: position(pair.difference) }} />
                </div>
              </td>
              <td>{clear ? `${pair.difference > 0 ? pair.b : pair.a} is better` : 'no clear difference'}</td>
            </tr>
          );
        })}
      </tbody>
    </ScrollingTable>
  );
}
