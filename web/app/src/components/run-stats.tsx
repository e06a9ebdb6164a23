// A run's headline figures as tiles, the top of its page.
import type { RunSummary } from '../../../api';
import { ago, count, fixed, grams, joules, percent, whole } from '../format';

export function RunStats({ run }: { run: RunSummary }) {
  const stats: Array<[string, string]> = [
    ['Step', run.horizon ? `${whole(run.step)} / ${whole(run.horizon)}` : whole(run.step)],
    ['Tokens', count(run.tokens)],
    ['Loss', fixed(run.loss, 3)],
    ['Val loss', fixed(run.val_loss, 3)],
    ['Val bits per byte', fixed(run.val_bpb, 3)],
    ['Tokens/s', count(run.tokens_per_s)],
    ['MFU', percent(run.mfu)],
    ['Energy', joules(run.energy_j)],
    ['Emissions (CO₂e)', grams(run.emissions_g)],
    ['Preset', run.preset ?? '–'],
    ['Parameters', count(run.parameters)],
    ['Dataset', [run.dataset, run.language].filter(Boolean).join(' · ') || '–'],
    ['Workers', run.workers == null ? '1 process' : String(run.workers)],
    ['Started', run.started_at ? new Date(run.started_at).toLocaleString() : '–'],
    ['Updated', ago(run.updated_at)],
  ];
  return (
    <dl class="stats">
      {stats.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
