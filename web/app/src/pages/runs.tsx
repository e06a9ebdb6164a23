// The runs page: every run under --runs, live, sortable by any column; ticked runs open in Compare.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { RunSummary } from '../../../api';
import { LiveIndicator } from '../components/live-indicator';
import { ScrollingTable } from '../components/scrolling-table';
import { StatusBadge } from '../components/status-badge';
import { ago, count, fixed, grams, joules, percent, whole } from '../format';
import { useRunList } from '../live-runs';
import { href } from '../route';

interface Column {
  label: string;
  numeric?: boolean;
  sortValue(run: RunSummary): number | string | null;
  cell(run: RunSummary): ComponentChildren;
}

const columns: Column[] = [
  {
    label: 'Run',
    sortValue: (run) => run.id,
    cell: (run) => (
      <>
        <a class="run-id" href={href.run(run.id)}>
          {run.id}
        </a>
        {run.error && <p class="error">{run.error}</p>}
      </>
    ),
  },
  { label: 'Status', sortValue: (run) => run.status, cell: (run) => <StatusBadge status={run.status} /> },
  { label: 'Preset', sortValue: (run) => run.preset, cell: (run) => run.preset ?? '–' },
  {
    label: 'Data',
    sortValue: (run) => run.language ?? run.dataset,
    cell: (run) => {
      const text = [run.dataset, run.language].filter(Boolean).join(' · ') || '–';
      return (
        <span class="dataset" title={text}>
          {text}
        </span>
      );
    },
  },
  {
    label: 'Steps',
    numeric: true,
    sortValue: (run) => run.step,
    cell: (run) => (run.horizon ? `${whole(run.step)} / ${whole(run.horizon)}` : whole(run.step)),
  },
  { label: 'Tokens', numeric: true, sortValue: (run) => run.tokens, cell: (run) => count(run.tokens) },
  { label: 'Loss', numeric: true, sortValue: (run) => run.loss, cell: (run) => fixed(run.loss, 3) },
  { label: 'Val bpb', numeric: true, sortValue: (run) => run.val_bpb, cell: (run) => fixed(run.val_bpb, 3) },
  { label: 'Tokens/s', numeric: true, sortValue: (run) => run.tokens_per_s, cell: (run) => count(run.tokens_per_s) },
  { label: 'MFU', numeric: true, sortValue: (run) => run.mfu, cell: (run) => percent(run.mfu) },
  { label: 'Energy', numeric: true, sortValue: (run) => run.energy_j, cell: (run) => joules(run.energy_j) },
  { label: 'CO₂e', numeric: true, sortValue: (run) => run.emissions_g, cell: (run) => grams(run.emissions_g) },
  {
    label: 'Updated',
    sortValue: (run) => run.updated_at,
    cell: (run) => <time dateTime={run.updated_at ?? undefined}>{ago(run.updated_at)}</time>,
  },
];

interface Sort {
  column: number;
  descending: boolean;
}

/** Missing values go last whichever way the column is sorted. */
function sortRuns(runs: RunSummary[], { column, descending }: Sort): RunSummary[] {
  const value = columns[column]!.sortValue;
  return [...runs].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (x === y) return a.id.localeCompare(b.id);
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * (descending ? -1 : 1);
  });
}

export function RunsPage() {
  const { runs, error, live } = useRunList();
  const [sort, setSort] = useState<Sort>({ column: columns.length - 1, descending: true });
  const [selected, setSelected] = useState<string[]>([]);
  const toggle = (id: string) => setSelected((ids) => (ids.includes(id) ? ids.filter((known) => known !== id) : [...ids, id]));
  const sortBy = (column: number) =>
    setSort((current) => ({
      column,
      descending: current.column === column ? !current.descending : columns[column]!.numeric === true,
    }));
  const rows = runs ? sortRuns([...runs.values()], sort) : [];
  return (
    <>
      <div class="page-head">
        <h1>Runs</h1>
        <LiveIndicator live={live} />
      </div>
      {error && <p class="error banner">{error}</p>}
      <div class="toolbar">
        <span class="muted">{runs ? `${rows.length} run${rows.length === 1 ? '' : 's'}` : 'Loading…'}</span>
        <button type="button" disabled={selected.length < 2} onClick={() => (location.hash = href.compare(selected))}>
          Compare selected ({selected.length})
        </button>
      </div>
      {runs && rows.length === 0 && (
        <p>
          No runs here yet. Start one with <code>ringlet train --data DATASET --out RUNS/NAME</code> inside the folder{' '}
          <code>ringlet serve --runs</code> watches.
        </p>
      )}
      {rows.length > 0 && (
        <ScrollingTable label="Runs">
          <thead>
            <tr>
              <th>
                <span class="sr-only">Compare</span>
              </th>
              {columns.map((column, i) => (
                <th
                  key={column.label}
                  class={column.numeric ? 'number' : undefined}
                  aria-sort={sort.column === i ? (sort.descending ? 'descending' : 'ascending') : undefined}
                >
                  <button type="button" class="sort" onClick={() => sortBy(i)}>
                    {column.label}
                    {sort.column === i ? (sort.descending ? ' ↓' : ' ↑') : ''}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((run) => (
              <tr key={run.id}>
                <td>
                  <input
                    type="checkbox"
                    checked={selected.includes(run.id)}
                    onChange={() => toggle(run.id)}
                    aria-label={`Compare ${run.id}`}
                  />
                </td>
                {columns.map((column) => (
                  <td key={column.label} class={column.numeric ? 'number' : undefined}>
                    {column.cell(run)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </ScrollingTable>
      )}
    </>
  );
}
