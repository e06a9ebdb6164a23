// Every Ringlet config is one zod schema filled in layers: a JSON file, then RINGLET_* environment
// variables, then command-line flags, each overriding the one before, and validated once where it
// enters, with errors that name the field. The training, distributed, evaluator and NATS settings all
// load through here; each owner keeps its schema and says where each field may come from.
import fs from 'node:fs';
import type { z } from 'zod';

/** Where one field may come from besides the file: an environment variable, a flag (commander's name). */
export interface FieldSource {
  path: string[];
  env?: string;
  flag?: string;
}

export interface Layers {
  name: string; // what errors call the config: "config", "distributed config", ...
  file?: string; // a JSON object
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, unknown>;
  fields: FieldSource[];
  /** Turns an environment variable's text into the field's value (a number, say); by default the text. */
  fromEnv?: (path: string[], text: string) => unknown;
}

/** Formats zod issues as "field.path: message" lines, the way the CLI shows them. */
export function describeIssues(error: z.ZodError, source: string): string {
  const lines = error.issues.map((issue) => `  ${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`);
  return `invalid ${source}:\n${lines.join('\n')}`;
}

function readConfigFile(file: string, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${name} file ${file}: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${name} file ${file} must hold a JSON object`);
  return value as Record<string, unknown>;
}

function setPath(raw: Record<string, unknown>, path: string[], value: unknown): void {
  let node = raw;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    node = (node[key] = typeof next === 'object' && next !== null ? next : {}) as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/** The file, then the environment, then the flags, laid over each other: the input to the schema. */
export function layered(l: Layers): Record<string, unknown> {
  const raw = l.file ? readConfigFile(l.file, l.name) : {};
  for (const f of l.fields) {
    const text = f.env === undefined ? undefined : l.env?.[f.env];
    if (text !== undefined) setPath(raw, f.path, l.fromEnv ? l.fromEnv(f.path, text) : text);
  }
  for (const f of l.fields) {
    const value = f.flag === undefined ? undefined : l.flags?.[f.flag];
    if (value !== undefined) setPath(raw, f.path, value);
  }
  return raw;
}

export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, name: string): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new Error(describeIssues(parsed.error, name));
  return parsed.data;
}

export function loadConfig<S extends z.ZodType>(schema: S, l: Layers): z.output<S> {
  return parseConfig(schema, layered(l), l.name);
}
