// Reading suite data: one JSON object per line, each checked with a zod schema. Every bad line is
// collected with its line number, and the file is refused with all of them named, not just the first.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/** A suite file with bad lines. `lines` holds every bad line number with what is wrong with it. */
export class SuiteFileError extends Error {
  constructor(
    readonly file: string,
    readonly lines: Array<{ line: number; error: string }>,
  ) {
    const shown = lines.slice(0, 10).map((l) => `  ${file}:${l.line}: ${l.error}`);
    const more = lines.length > 10 ? [`  ... and ${lines.length - 10} more bad lines`] : [];
    super([`${file}: ${lines.length} bad line${lines.length === 1 ? '' : 's'}`, ...shown, ...more].join('\n'));
  }
}

export interface Row<T> {
  line: number;
  value: T;
}

/** The rows of a jsonl file that pass `schema`; blank lines are skipped. Throws SuiteFileError if any line fails. */
export async function readJsonl<S extends z.ZodType>(file: string, schema: S): Promise<Array<Row<z.infer<S>>>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read suite file ${file}: ${(err as Error).message}`);
  }
  const rows: Array<Row<z.infer<S>>> = [];
  const bad: Array<{ line: number; error: string }> = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      bad.push({ line, error: `not JSON (${(err as Error).message})` });
      return;
    }
    const parsed = schema.safeParse(json);
    if (parsed.success) rows.push({ line, value: parsed.data });
    else
      bad.push({
        line,
        error: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(line)'}: ${issue.message}`).join('; '),
      });
  });
  if (bad.length > 0) throw new SuiteFileError(file, bad);
  if (rows.length === 0) throw new Error(`suite file ${file} has no items`);
  return rows;
}

/** The first `limit` items of each group, in file order (all of them without a limit). */
export function limitPerGroup<T>(items: T[], group: (item: T) => string, limit?: number): T[] {
  if (limit === undefined) return items;
  const seen = new Map<string, number>();
  return items.filter((item) => {
    const n = seen.get(group(item)) ?? 0;
    seen.set(group(item), n + 1);
    return n < limit;
  });
}
