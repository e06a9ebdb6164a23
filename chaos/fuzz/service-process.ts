// A fuzzed service as a child process: started through the `ringlet` command line, read through its
// stdout (JSON lines: its addresses, then announcements) and steered through its stdin. Each service runs
// alone in its process so that its resident memory (VmRSS in /proc/PID/status) is its own, and so that
// a crash is seen for what it is: the process exits while the fuzzer goes on.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface Exit {
  code: number | null;
  signal: string | null;
  stderr: string; // the last lines it wrote
}

const STDERR_LINES = 40;

export class ServiceProcess {
  readonly pid: number;
  /** Settles when the process exits, for whatever reason. */
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private readonly stderr: string[] = [];
  private readonly lines: Array<Record<string, unknown>> = [];
  private readonly waiters = new Set<() => void>();
  private stopping = false;
  private collections = 0; // collections reported so far

  /** Runs `command` (argv[0] the program) with `env` added to this process's environment. */
  constructor(command: string[], env: Record<string, string>) {
    this.child = spawn(command[0], command.slice(1), { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid!;
    this.child.stdin!.on('error', () => {}); // a dead child's stdin: its exit says why
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line));
      } catch {
        return; // not one of its announcements
      }
      for (const w of this.waiters) w();
    });
    readline.createInterface({ input: this.child.stderr! }).on('line', (line) => {
      if (line === COLLECTED) return void (this.collections += 1);
      this.stderr.push(line.slice(0, 500));
      if (this.stderr.length > STDERR_LINES) this.stderr.shift();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        for (const w of this.waiters) w();
        // Let the last stderr lines arrive: they say why it died.
        setTimeout(() => resolve({ code, signal, stderr: this.stderr.join('\n') }), 100);
      }),
    );
  }

  /** True until the process exits (or is stopped by us). */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first stdout line, from now or before, that `match` accepts; rejects after `timeoutMs` or on exit. */
  async announcement<T extends Record<string, unknown>>(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.findIndex(match);
      if (found >= 0) return this.lines.splice(0, found + 1)[found] as T;
      if (!this.alive)
        throw new Error(
          `the service exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr.slice(-5).join(' | ')}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`the service did not announce itself within ${timeoutMs} ms: ${this.stderr.slice(-5).join(' | ')}`);
      await new Promise<void>((resolve) => {
        const wake = () => (clearTimeout(timer), this.waiters.delete(wake), resolve());
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  /** Removes the stdout lines received so far that `match` accepts, and returns the last of them. */
  latest<T extends Record<string, unknown>>(match: (line: Record<string, unknown>) => boolean): T | undefined {
    const matching = this.lines.filter(match);
    this.lines.splice(0, this.lines.length, ...this.lines.filter((l) => !match(l)));
    return matching.at(-1) as T | undefined;
  }

  /** Sends one line to its stdin. */
  command(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /**
   * Resident memory in MiB after a full garbage collection (Linux; null elsewhere or once it has exited).
   * V8 lets garbage pile up for a long while before it collects (in a 10,000-message run, RSS rose by up to
   * 170 MiB and fell back, while the heap after a collection stayed within 2 MiB), so memory is read after
   * asking the process to collect: a process started with MEASURED_NODE_FLAGS does on SIGUSR2.
   */
  async rssMiB(): Promise<number | null> {
    if (!this.alive) return null;
    const collected = this.collections;
    this.child.kill('SIGUSR2');
    const deadline = Date.now() + 5000;
    while (this.collections === collected && Date.now() < deadline && this.alive) await new Promise((r) => setTimeout(r, 10));
    return this.residentMiB();
  }

  private residentMiB(): number | null {
    try {
      const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${this.pid}/status`, 'utf8'))?.[1];
      return kb === undefined ? null : Number(kb) / 1024;
    } catch {
      return null;
    }
  }

  /** SIGTERM, then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.stopping || !this.alive) return;
    this.stopping = true;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    this.child.kill('SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }
}

const COLLECTED = 'fuzz: garbage collected';

/**
 * Node flags for a measured service: gc() exposed, and a SIGUSR2 handler (a data: module, so that nothing
 * else is loaded) that runs two full collections and says so on stderr. Nothing else changes.
 */
export const MEASURED_NODE_FLAGS = [
  '--expose-gc',
  '--import',
  `data:text/javascript,process.on('SIGUSR2', () => { globalThis.gc(); globalThis.gc(); process.stderr.write('${COLLECTED}\\n'); });`,
];

/** The argv that runs the `ringlet` command line this module belongs to (sources through tsx, or dist). */
export function ringletCommand(args: string[]): string[] {
  const fromSources = import.meta.url.endsWith('.ts');
  const cli = fileURLToPath(new URL(`../../cli/ringlet.${fromSources ? 'ts' : 'js'}`, import.meta.url));
  return [process.execPath, ...MEASURED_NODE_FLAGS, ...(fromSources ? ['--import', 'tsx'] : []), cli, ...args];
}
