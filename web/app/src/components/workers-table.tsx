// A distributed run's workers as its coordinator sees them.
import type { WorkerInfo } from '../../../api';
import { whole } from '../format';
import { ScrollingTable } from './scrolling-table';

export const WorkersTable = ({ workers }: { workers: WorkerInfo[] }) => (
  <ScrollingTable label="Workers">
    <thead>
      <tr>
        <th class="number">Rank</th>
        <th>Worker</th>
        <th>Host</th>
        <th>Health</th>
        <th class="number">Step</th>
        <th class="number">Last seen</th>
      </tr>
    </thead>
    <tbody>
      {workers.map((worker) => (
        <tr key={worker.id}>
          <td class="number">{worker.rank}</td>
          <td class="mono">{worker.id}</td>
          <td>{worker.host ?? '–'}</td>
          <td>
            <span class={`badge ${worker.healthy ? 'finished' : 'failed'}`}>{worker.healthy ? 'healthy' : 'unhealthy'}</span>
          </td>
          <td class="number">{whole(worker.step)}</td>
          <td class="number">{worker.last_seen_s == null ? '–' : `${worker.last_seen_s.toFixed(1)} s ago`}</td>
        </tr>
      ))}
    </tbody>
  </ScrollingTable>
);
