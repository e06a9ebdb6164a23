// Runs a `ringlet` subcommand as a child process, the way a user would, and returns its JSON summary: the
// study's cells train in processes of their own (one per core), so a crash or a signal stops one cell only.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

/** The command line that started this process's CLI (node, its loader flags, the entry script). */
function ringletCommand(): [string, string[]] {
  return [process.execPath, [...process.execArgv, process.argv[1]]];
}

/**
 * Runs `ringlet <args> --json`, appending its stderr (progress and log lines) to `logFile`, and resolves with
 * the summary object its last stdout line holds; rejects with the command's own error message.
 */
export function runRinglet(args: string[], logFile: string): Promise<Record<string, unknown>> {
  const [node, prefix] = ringletCommand();
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logFile, 'a');
    fs.writeSync(log, `\n$ ringlet ${args.join(' ')}\n`);
    const child = spawn(node, [...prefix, ...args, '--json'], { stdio: ['ignore', 'pipe', log] });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.on('error', (err) => {
      fs.closeSync(log);
      reject(err);
    });
    child.on('close', (code, signal) => {
      fs.closeSync(log);
      const last = stdout.trim().split('\n').pop() ?? '';
      let summary: Record<string, unknown> | null = null;
      try {
        summary = JSON.parse(last) as Record<string, unknown>;
      } catch {
        summary = null;
      }
      if (code === 0 && summary && !('error' in summary)) resolve(summary);
      else {
        const why = summary && typeof summary.error === 'string' ? summary.error : `exit ${signal ?? code}`;
        reject(new Error(`ringlet ${args[0]} ${args[1] ?? ''}: ${why} (log: ${logFile})`));
      }
    });
  });
}
