// Reads a results folder (cells/*.json and datasets/*.json, as `ringlet study run` leaves them), each file
// checked against its schema: a bad file stops the report with its path and the bad field.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { describeIssues } from '../config/layers.js';
import { CellResultSchema, DatasetResultSchema, type CellResult, type DatasetResult } from './results.js';

export interface Results {
  cells: CellResult[];
  datasets: DatasetResult[];
}

export async function readResults(resultsDir: string): Promise<Results> {
  return {
    cells: await readFolder(path.join(resultsDir, 'cells'), CellResultSchema),
    datasets: await readFolder(path.join(resultsDir, 'datasets'), DatasetResultSchema),
  };
}

async function readFolder<T extends z.ZodType>(dir: string, schema: T): Promise<z.infer<T>[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    throw new Error(`cannot read the results folder ${dir}: ${(err as Error).message}`);
  }
  return Promise.all(
    names.map(async (name) => {
      const file = path.join(dir, name);
      let value: unknown;
      try {
        value = JSON.parse(await readFile(file, 'utf8'));
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as Error).message}`);
      }
      const parsed = schema.safeParse(value);
      if (!parsed.success) throw new Error(describeIssues(parsed.error, file));
      return parsed.data;
    }),
  );
}
