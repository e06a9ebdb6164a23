// A study plan (study/plan.yml): the datasets, the held-out text per language, the training and evaluation
// settings every cell shares, and groups of cells. A group is the cross product of its datasets, models
// and seeds at one token budget in bytes; each product is a cell, one training run and its evaluations.
// A cell's hash covers everything that shapes its result, so a changed plan re-runs only what changed.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues } from '../config/layers.js';
import { ModelConfigFields } from '../lm/model-config.js';
import { LanguageSchema } from './results.js';

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const name = z.string().regex(NAME, 'lower-case letters, digits and "-", at most 63');
const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const DatasetSpecSchema = z
  .object({
    inputs: z.array(z.string().min(1)).min(1), // corpus folders, relative to the plan file
    languages: z.array(LanguageSchema).min(1), // what the corpus holds: decides its benchmarks and samples
    vocab: int(257, 1 << 20),
    filters: z.enum(['on', 'off']).default('on'), // quality filters and near-duplicate removal
    spelling: z.enum(['none', 'sv-1906']).default('none'), // normalise pre-1906 Swedish spelling
    split_seed: int(0, 2 ** 31 - 1).default(1234),
    val_fraction: z.number().gt(0).lt(1).default(0.05), // share of novels held out
  })
  .strict();
export type DatasetSpec = z.infer<typeof DatasetSpecSchema>;

export const ModelSpecSchema = z
  .object({
    name: name.optional(), // how cell ids and the report call it; default the preset's name
    preset: z.string().min(1),
    overrides: ModelConfigFields.omit({ vocab: true }).partial().default({}),
  })
  .strict();

export const GroupSchema = z
  .object({
    question: z.string().optional(), // what the group is for, shown in the report
    datasets: z.array(name).min(1),
    models: z.array(ModelSpecSchema).min(1),
    seeds: z.array(int(0, 2 ** 31 - 1)).min(1),
    budget_bytes: z.number().positive().max(1e13), // training text per cell, in UTF-8 bytes (before --scale)
  })
  .strict();

export const PlanSchema = z
  .object({
    name: name,
    work_dir: z.string().default('runs/study'), // datasets and checkpoints (large, not committed)
    results_dir: z.string().default('study/results'), // one JSON per cell and dataset (committed)
    answer: z.string().optional(), // hand-written text that heads the report, its {{figures}} filled from the results
    datasets: z.record(name, DatasetSpecSchema),
    held_out: z.partialRecord(LanguageSchema, name), // the dataset whose val novels are each language's held-out text
    training: z
      .object({
        batch_size: int(1, 4096).default(8),
        lr: z.number().positive().max(1).default(3e-3),
        warmup_steps: int(0, 1e6).default(30),
        curve_points: int(1, 1000).default(10), // evaluations along the run: the learning curve
        eval_windows: int(1, 1e5).default(32), // validation windows per curve point
      })
      .strict()
      .prefault({}),
    evaluation: z
      .object({
        held_out_windows: int(1, 1e6).default(128),
        blimp_per_paradigm: int(1, 1e6).default(100),
        dalaj_items: int(1, 1e6).optional(), // all when absent
        samples: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    groups: z.record(name, GroupSchema),
  })
  .strict()
  .superRefine((plan, ctx) => {
    for (const [language, dataset] of Object.entries(plan.held_out))
      if (!plan.datasets[dataset!])
        ctx.addIssue({ code: 'custom', path: ['held_out', language], message: `no dataset "${dataset}" in datasets` });
    for (const [g, group] of Object.entries(plan.groups)) {
      group.datasets.forEach((d, i) => {
        if (!plan.datasets[d]) ctx.addIssue({ code: 'custom', path: ['groups', g, 'datasets', i], message: `no dataset "${d}"` });
        else
          for (const language of plan.datasets[d].languages)
            if (!plan.held_out[language])
              ctx.addIssue({
                code: 'custom',
                path: ['held_out'],
                message: `dataset "${d}" holds ${language}, which has no held-out dataset`,
              });
      });
      const names = group.models.map(modelName);
      if (new Set(names).size !== names.length)
        ctx.addIssue({
          code: 'custom',
          path: ['groups', g, 'models'],
          message: `model names repeat (${names}); give each a name`,
        });
    }
  });
export type Plan = z.infer<typeof PlanSchema>;
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

function modelName(m: ModelSpec): string {
  return m.name ?? m.preset;
}

/** One training run of the plan, with everything that decides its result. */
export interface Cell {
  id: string; // "<group>/<dataset>-<model>-s<seed>"
  group: string;
  dataset: string;
  datasetSpec: DatasetSpec;
  model: ModelSpec;
  seed: number;
  budgetBytes: number; // after --scale
  hash: string;
}

/** Reads a plan (YAML or JSON), validates it, and resolves its corpus paths against the plan's folder. */
export function loadPlan(file: string): Plan {
  let raw: unknown;
  try {
    raw = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read plan ${file}: ${(err as Error).message}`);
  }
  const parsed = PlanSchema.safeParse(raw);
  if (!parsed.success) throw new Error(describeIssues(parsed.error, `study plan ${file}`));
  const base = path.dirname(path.resolve(file));
  const plan = parsed.data;
  for (const spec of Object.values(plan.datasets)) spec.inputs = spec.inputs.map((p) => path.resolve(base, p));
  return plan;
}

/** sha256 of a value's JSON with object keys sorted, so the order fields are written in does not matter. */
export function canonicalHash(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

/**
 * A dataset's hash: its spec with corpus paths as given relative to the plan (so a checkout elsewhere, or
 * a cluster's mount, finds its cached results).
 */
export function datasetHash(spec: DatasetSpec, planDir: string): string {
  return canonicalHash({ ...spec, inputs: spec.inputs.map((p) => path.relative(planDir, p)) });
}

/** Every cell of the plan, in the plan's order of groups, datasets, models and seeds. */
export function planCells(plan: Plan, planDir: string, scale = 1): Cell[] {
  if (!(scale > 0)) throw new Error(`--scale must be positive, got ${scale}`);
  const cells: Cell[] = [];
  for (const [group, g] of Object.entries(plan.groups))
    for (const dataset of g.datasets)
      for (const model of g.models)
        for (const seed of g.seeds) {
          const datasetSpec = plan.datasets[dataset];
          const budgetBytes = g.budget_bytes * scale;
          const heldOut = datasetSpec.languages.map((l) => [l, datasetHash(plan.datasets[plan.held_out[l]!], planDir)]);
          const hash = canonicalHash({
            dataset: datasetHash(datasetSpec, planDir),
            model: { preset: model.preset, overrides: model.overrides },
            seed,
            budgetBytes,
            training: plan.training,
            evaluation: plan.evaluation,
            heldOut,
          });
          const id = `${group}/${dataset}-${modelName(model)}-s${seed}`;
          cells.push({ id, group, dataset, datasetSpec, model, seed, budgetBytes, hash });
        }
  const ids = new Set<string>();
  for (const c of cells) {
    if (ids.has(c.id)) throw new Error(`the plan makes cell ${c.id} twice`);
    ids.add(c.id);
  }
  return cells;
}
