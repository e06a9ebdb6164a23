// Turns metrics.jsonl points into the aligned arrays uPlot draws: one sorted x (training tokens) shared
// by every line, and per line a value or null at each x.
import type { MetricPoint } from '../../api';

export type MetricField = 'loss' | 'val_loss' | 'val_bpb' | 'lr' | 'grad_norm' | 'tokens_per_s' | 'mfu';

interface Curve {
  points: MetricPoint[];
  field: MetricField;
}

interface AlignedCurves {
  x: number[];
  ys: Array<Array<number | null>>;
}

/**
 * A resumed run writes some token counts twice; the later point wins, as it is the one the run went on
 * from. An x where no curve has a value is left out.
 */
export function alignByTokens(curves: Curve[]): AlignedCurves {
  const byTokens = curves.map(({ points, field }) => {
    const values = new Map<number, number>();
    for (const point of points) {
      const value = point[field];
      if (value != null && Number.isFinite(value)) values.set(point.tokens, value);
    }
    return values;
  });
  const x = [...new Set(byTokens.flatMap((values) => [...values.keys()]))].sort((a, b) => a - b);
  return { x, ys: byTokens.map((values) => x.map((tokens) => values.get(tokens) ?? null)) };
}
