// How the report reads cells: grouped into variants (one dataset and model, its seeds), ordered by size,
// and turned into the evaluation units the bootstrap resamples.
import { itemUnits, windowUnits, type Units } from './bootstrap.js';
import type { Benchmark, CellResult, Language } from './results.js';

/** The cells of one dataset and model: a group's unit of comparison, its seeds averaged. */
export interface Variant {
  group: string;
  dataset: string;
  /** The plan's name for the model (from the cell id), else its preset. */
  model: string;
  cells: CellResult[];
  params: { total: number; active: number };
}

export function variantsOf(cells: CellResult[]): Variant[] {
  const byKey = new Map<string, Variant>();
  for (const c of [...cells].sort((a, b) => a.id.localeCompare(b.id))) {
    const model = modelName(c);
    const key = JSON.stringify([c.group, c.dataset, model]);
    const v = byKey.get(key) ?? { group: c.group, dataset: c.dataset, model, cells: [], params: c.params };
    if (v.params.total !== c.params.total || v.params.active !== c.params.active)
      throw new Error(`${c.id}: ${c.params.total} parameters, but ${v.cells[0].id} of the same model has ${v.params.total}`);
    v.cells.push(c);
    byKey.set(key, v);
  }
  return [...byKey.values()];
}

/** The model's name in the cell id "<group>/<dataset>-<model>-s<seed>", else its preset. */
export function modelName(c: CellResult): string {
  const head = `${c.group}/${c.dataset}-`;
  const tail = `-s${c.seed}`;
  return c.id.startsWith(head) && c.id.endsWith(tail) && c.id.length > head.length + tail.length
    ? c.id.slice(head.length, -tail.length)
    : c.preset;
}

/** The language of a one-language variant. */
export function only(v: Variant): Language | undefined {
  const languages = v.cells[0].languages;
  return languages.length === 1 ? languages[0] : undefined;
}

/** Model names ordered by parameter count: the scales. */
export function scaleOrder(variants: Variant[]): string[] {
  const params = new Map(variants.map((v) => [v.model, v.params.total]));
  return [...params.keys()].sort((a, b) => params.get(a)! - params.get(b)!);
}

/** The mixture (fewer active than total parameters) and the dense models nearest its active and its total size. */
export function moeRoles(variants: Variant[]): Map<'moe' | 'dense_active' | 'dense_total', Variant> {
  const roles = new Map<'moe' | 'dense_active' | 'dense_total', Variant>();
  const moe = variants.find((v) => v.params.active < v.params.total);
  const dense = variants.filter((v) => v.params.active === v.params.total);
  if (!moe || dense.length === 0) return roles;
  const nearest = (target: number, among: Variant[]) =>
    among.reduce((best, v) =>
      Math.abs(Math.log(v.params.total / target)) < Math.abs(Math.log(best.params.total / target)) ? v : best,
    );
  roles.set('moe', moe);
  const active = nearest(moe.params.active, dense);
  roles.set('dense_active', active);
  const rest = dense.filter((v) => v !== active);
  if (rest.length > 0) roles.set('dense_total', nearest(moe.params.total, rest));
  return roles;
}

export function heldOutUnits(c: CellResult, language: Language): Units {
  const h = c.held_out[language];
  if (!h) throw new Error(`${c.id} has no held-out score for ${language}`);
  // Windows pair across cells that read the same text with the same tokenizer (the same training dataset).
  return windowUnits(h, `${c.dataset}|${h.dataset}`);
}

export function benchmarkUnits(cells: CellResult[], suite: Benchmark['suite']): Units[] | undefined {
  const found = cells.map((c) => c.benchmarks.find((b) => b.suite === suite));
  return found.every((b) => b !== undefined) ? found.map((b) => itemUnits(b!.item_ids, b!.item_scores)) : undefined;
}
