// The study's figures: Vega-Lite specifications compiled by vega-lite and drawn to SVG by vega's headless
// View, offline (the data is inline, nothing is loaded). Each builder takes plain rows and returns a spec;
// svg() renders one. Text widths are estimated (no canvas package), which keeps the output the same bytes
// on every machine.
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

const WIDTH = 420;
const HEIGHT = 260;

/** Renders a Vega-Lite spec to an SVG document. */
export async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return stableIds(await view.toSVG());
  } finally {
    view.finalize();
  }
}

// vega-scenegraph numbers clip paths and gradients with counters global to the process, so a figure's
// ids would depend on what was drawn before it; renumber them by first appearance in this document.
function stableIds(doc: string): string {
  const ids = new Map<string, string>();
  return doc.replace(/\b(clip|gradient_)(\d+)\b/g, (whole, prefix: string) => {
    let id = ids.get(whole);
    if (id === undefined) {
      id = `${prefix}${ids.size + 1}`;
      ids.set(whole, id);
    }
    return id;
  });
}

export interface CurveRow {
  /** One line: a cell (a seed of one dataset and model). */
  line: string;
  language: string;
  scale: string;
  bytes: number;
  bpb: number;
}

/** (a) Validation bits per byte against training bytes: a line per cell, colour by language, dash by scale. */
export function learningCurves(rows: CurveRow[], scaleOrder: string[]): TopLevelSpec {
  return {
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    mark: { type: 'line', point: false, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'bytes', type: 'quantitative', title: 'training bytes' },
      y: { field: 'bpb', type: 'quantitative', title: 'validation bits per byte', scale: { zero: false } },
      color: { field: 'language', type: 'nominal', title: 'language' },
      strokeDash: { field: 'scale', type: 'nominal', title: 'scale', sort: scaleOrder },
      detail: { field: 'line', type: 'nominal' },
    },
  };
}

export interface IntervalRow {
  value: number;
  ci_low: number;
  ci_high: number;
}

/** (b) Held-out bits per byte against parameter count: a point per language and scale, with its 95% interval. */
export function bpbByParams(rows: (IntervalRow & { language: string; params: number })[]): TopLevelSpec {
  const x = { field: 'params', type: 'quantitative', title: 'parameters', scale: { type: 'log' } } as const;
  const color = { field: 'language', type: 'nominal', title: 'language' } as const;
  return {
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'line', strokeWidth: 1 },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'held-out bits per byte', scale: { zero: false } },
          color,
        },
      },
      { mark: { type: 'point', filled: true }, encoding: { x, y: { field: 'value', type: 'quantitative' }, color } },
      {
        mark: { type: 'rule' },
        encoding: { x, y: { field: 'ci_low', type: 'quantitative' }, y2: { field: 'ci_high' }, color },
      },
    ],
  };
}

/** (c) Grouped bars with 95% intervals: one group per `group`, one bar per `bar` inside it. */
export function groupedBars(rows: (IntervalRow & { group: string; bar: string })[], yTitle: string): TopLevelSpec {
  const x = { field: 'group', type: 'nominal', title: null, axis: { labelAngle: 0 } } as const;
  const xOffset = { field: 'bar', type: 'nominal' } as const;
  const color = { field: 'bar', type: 'nominal', title: null } as const;
  return {
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    layer: [
      { mark: { type: 'bar' }, encoding: { x, xOffset, color, y: { field: 'value', type: 'quantitative', title: yTitle } } },
      {
        mark: { type: 'rule', color: 'black' },
        encoding: { x, xOffset, y: { field: 'ci_low', type: 'quantitative' }, y2: { field: 'ci_high' } },
      },
    ],
  };
}

/** (d) Experts × layers coloured by the share of English among the tokens each expert received. */
/** One map per model (column `model`): experts are numbered arbitrarily in each training run. */
export function expertHeatmap(rows: { model: string; layer: number; expert: number; eng_share: number }[]): TopLevelSpec {
  return {
    data: { values: rows },
    facet: { column: { field: 'model', type: 'nominal', title: null } },
    spec: {
      width: Math.max(120, 36 * new Set(rows.map((r) => r.expert)).size),
      height: Math.max(80, 36 * new Set(rows.map((r) => r.layer)).size),
      mark: { type: 'rect' },
      encoding: {
        x: { field: 'expert', type: 'ordinal', title: 'expert' },
        y: { field: 'layer', type: 'ordinal', title: 'layer' },
        color: {
          field: 'eng_share',
          type: 'quantitative',
          title: 'English share',
          scale: { domain: [0, 1], scheme: 'blueorange' },
        },
      },
    },
  };
}
