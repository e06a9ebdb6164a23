// How every subcommand ends: with --json, one JSON summary object as the last line of stdout; otherwise
// a short human summary. Errors end the same way (an `error` field), with exit status 1.

import { InvalidArgumentError } from 'commander';

export interface CommandOptions {
  json?: boolean;
  /** Fields the human summary leaves out, such as text the command has already streamed. */
  omitFromHuman?: string[];
}

export async function runCommand(options: CommandOptions, body: () => Promise<Record<string, unknown>>): Promise<void> {
  try {
    const summary = await body();
    if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stderr.write(`${humanSummary(summary, options.omitFromHuman ?? [])}\n`);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${message}\n`);
    if (options.json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
    process.exitCode = 1;
  }
}

function humanSummary(summary: Record<string, unknown>, omit: string[]): string {
  return Object.entries(summary)
    .filter(([k, v]) => !omit.includes(k) && (v === null || typeof v !== 'object'))
    .map(([k, v]) => `${k}: ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(5) : v}`)
    .join('\n');
}

/** Commander argument parsers that reject what is not a number, naming the flag. */
export function intArg(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${flag} must be an integer (got "${value}")`);
    return n;
  };
}

export function numberArg(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a number (got "${value}")`);
    return n;
  };
}

/**
 * Lets a server command exit once its work is done even if a connection will not close: a peer whose link
 * was cut leaves an HTTP/2 socket that cannot flush its last bytes, and Node keeps it (and the process) until
 * TCP gives up, some 15 minutes. The grace lets stdout drain first.
 */
export function exitWhenDone(graceMs = 3000): void {
  setTimeout(() => process.exit(), graceMs).unref();
}
