// `--check-config` on the subcommands a deployment runs (coordinator, worker, evaluator, serve, data prepare):
// the command loads and validates its whole configuration as a start would (file, RINGLET_* variables, flags,
// and the files the start reads at once), prints it resolved with its secrets redacted, and exits without
// starting anything. The Helm chart's contract test (test/helm-chart.test.ts) runs it on every container.
import fs from 'node:fs';
import type { Command } from 'commander';
import { BACKEND_NAMES } from '../kernels/backend.js';

// Fields that hold a secret, wherever they appear in a config: their values never reach the output.
const SECRET_FIELDS = new Set(['token', 'password', 'bus_tokens']);

export const REDACTED = '[redacted]';

export function addCheckConfigOption(command: Command): Command {
  return command.option(
    '--check-config',
    'load and validate the whole config (file, RINGLET_* variables, flags), print it resolved with secrets redacted, and exit',
  );
}

/** `value` with every secret field's value replaced by REDACTED (each element of a list of secrets). */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key,
      !SECRET_FIELDS.has(key) || v === undefined ? redactSecrets(v) : Array.isArray(v) ? v.map(() => REDACTED) : REDACTED,
    ]),
  );
}

/** Throws naming the setting unless each given file can be read, as the start would read it. */
export function checkReadable(files: Record<string, string | undefined>): void {
  for (const [setting, file] of Object.entries(files)) {
    if (file === undefined) continue;
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch (err) {
      throw new Error(`${setting}: cannot read the file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}

/** Throws unless `name` is a backend setupBackend takes (checked without loading it). */
export function checkBackendName(name: string): void {
  if (!(BACKEND_NAMES as readonly string[]).includes(name))
    throw new Error(`--backend: unknown backend "${name}"; expected one of ${BACKEND_NAMES.join(', ')}`);
}

/**
 * The summary of a passed check: the resolved config, secrets redacted. With --json it is the summary's
 * `config` field (the last line); otherwise it is printed as indented JSON on stdout.
 */
export function checkedConfig(options: { json?: boolean }, config: Record<string, unknown>): Record<string, unknown> {
  const resolved = redactSecrets(config);
  if (options.json) return { config_ok: true, config: resolved };
  process.stdout.write(`${JSON.stringify(resolved, null, 2)}\n`);
  return { config_ok: true };
}
