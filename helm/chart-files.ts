// What helm/ringlet takes from the rest of the repository, since a chart reads nothing outside its folder
// (.Files.Get): the Grafana dashboard and the alert rules, copied into files/, and the JSON Schema of the
// training config, generated from train/config.ts's zod schema into values.schema.json's
// definitions.trainingConfig (the rest of values.schema.json is written by hand).
// `node --import tsx helm/chart-files.ts` writes them; test/helm-chart.test.ts fails while one is stale.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { z } from 'zod';
import { TrainConfigSchema } from '../train/config.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CHART_DIR = path.join(REPO, 'helm', 'ringlet');

// The chart sets these fields of the training config from its own values (dataset.name, job.id).
const SET_BY_CHART = ['data', 'out'];

/** The training config's JSON Schema (draft 7, as Helm's validator reads) less the fields the chart sets. */
export function trainingConfigSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(TrainConfigSchema, { target: 'draft-7', io: 'input' }) as Record<string, unknown>;
  delete schema.$schema;
  const properties = schema.properties as Record<string, unknown>;
  for (const field of SET_BY_CHART) delete properties[field];
  schema.required = (schema.required as string[] | undefined)?.filter((f) => !SET_BY_CHART.includes(f)) ?? [];
  schema.description =
    'The training config (train/config.ts) without data and out, generated from its zod schema by helm/chart-files.ts';
  return schema;
}

async function formatJson(file: string, value: unknown): Promise<string> {
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(JSON.stringify(value), { ...options, parser: 'json' });
}

/** Each file of the chart that comes from elsewhere, by its path in the chart, with the content it must have. */
export async function chartFiles(): Promise<Record<string, string>> {
  const schemaFile = path.join(CHART_DIR, 'values.schema.json');
  const values = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  values.definitions.trainingConfig = trainingConfigSchema();
  return {
    'files/ringlet-dashboard.json': fs.readFileSync(path.join(REPO, 'observability/grafana/ringlet-dashboard.json'), 'utf8'),
    'files/ringlet-rules.yml': fs.readFileSync(path.join(REPO, 'observability/prometheus/ringlet-rules.yml'), 'utf8'),
    'values.schema.json': await formatJson(schemaFile, values),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [file, content] of Object.entries(await chartFiles())) {
    fs.mkdirSync(path.dirname(path.join(CHART_DIR, file)), { recursive: true });
    fs.writeFileSync(path.join(CHART_DIR, file), content);
    process.stdout.write(`wrote helm/ringlet/${file}\n`);
  }
}
