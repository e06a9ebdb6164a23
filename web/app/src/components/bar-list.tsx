// Accuracies as horizontal bars, best first (BLiMP per paradigm, DaLAJ per error label), with the
// 50 % line that a minimal-pair suite's chance level sits on.
import { percent } from '../format';

export function BarList({ label, values }: { label: string; values: Record<string, number> }) {
  const rows = Object.entries(values).sort(([, a], [, b]) => b - a);
  return (
    <ul class="bars" aria-label={label}>
      {rows.map(([name, value]) => (
        <li key={name}>
          <span class="name" title={name}>
            {name}
          </span>
          <span class="track" aria-hidden="true">
            <span class="fill" style={{ width: `${Math.max(0, Math.min(1, value)) * 100}%` }} />
            <span class="chance" />
          </span>
          <span class="value">{percent(value)}</span>
        </li>
      ))}
    </ul>
  );
}
