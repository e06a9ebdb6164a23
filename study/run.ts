// `ringlet study run`: prepares the plan's datasets, then runs its cells, one child process per core, each
// `ringlet study run --cell ID` (what a cluster runs as one job per cell). A cell whose result file holds
// its hash is done and skipped; an interrupted cell resumes from its own checkpoints.
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { cellDone, cellResultFile, runCell } from './cell.js';
import { ensureDatasets, type PlanPaths } from './datasets.js';
import { planCells, type Cell, type Plan } from './plan.js';
import { runRinglet } from './ringlet-child.js';

export interface RunOptions {
  planFile: string;
  scale: number;
  /** Cells at once; default one per core. */
  jobs?: number;
  /** Only these cell ids (a cluster job runs one). */
  only?: string[];
  /** Prepare the datasets, run no cell. */
  prepareOnly?: boolean;
  log: (line: string) => void;
}

export interface RunSummary {
  cells: number;
  cached: number;
  ran: string[];
  failed: Array<{ cell: string; error: string }>;
  seconds: number;
}

export function planPaths(plan: Plan, planFile: string, dirs: { workDir?: string; resultsDir?: string } = {}): PlanPaths {
  const planDir = path.dirname(path.resolve(planFile));
  return {
    planDir,
    workDir: path.resolve(planDir, dirs.workDir ?? plan.work_dir),
    resultsDir: path.resolve(planDir, dirs.resultsDir ?? plan.results_dir),
  };
}

/** The cells `only` names, in plan order, or all; an unknown id is an error naming the known ones. */
export function selectCells(cells: Cell[], only?: string[]): Cell[] {
  if (!only) return cells;
  const known = new Set(cells.map((c) => c.id));
  for (const id of only) if (!known.has(id)) throw new Error(`no cell "${id}" in the plan; its cells: ${[...known].join(', ')}`);
  return cells.filter((c) => only.includes(c.id));
}

export async function runPlan(plan: Plan, paths: PlanPaths, options: RunOptions, passOn: string[]): Promise<RunSummary> {
  const started = Date.now();
  const cells = selectCells(planCells(plan, paths.planDir, options.scale), options.only);
  // First seeds first: a study stopped halfway has every question answered at one seed.
  const seedRank = (c: Cell) => plan.groups[c.group].seeds.indexOf(c.seed);
  const todo = cells.filter((c) => !cellDone(paths, c)).sort((a, b) => seedRank(a) - seedRank(b));
  // Only what the cells to run read: with every result in place (a fresh clone), nothing is prepared.
  const needed = new Set(
    (options.prepareOnly ? cells : todo).flatMap((c) => [c.dataset, ...c.datasetSpec.languages.map((l) => plan.held_out[l]!)]),
  );
  options.log(`${cells.length} cells, ${cells.length - todo.length} already done; preparing ${needed.size} datasets`);
  await ensureDatasets(plan, paths, needed);
  if (options.prepareOnly)
    return {
      cells: cells.length,
      cached: cells.length - todo.length,
      ran: [],
      failed: [],
      seconds: (Date.now() - started) / 1000,
    };
  const failed: RunSummary['failed'] = [];
  const ran: string[] = [];
  if (todo.length === 1 && options.only) {
    // This process is the cell's job: run it here.
    const cell = todo[0];
    await runCell(plan, paths, cell);
    ran.push(cell.id);
  } else {
    const jobs = Math.max(1, options.jobs ?? os.availableParallelism());
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const cell = todo[next++];
        const cellStarted = Date.now();
        options.log(`cell ${cell.id}: started`);
        const log = path.join(paths.workDir, 'logs', `${cell.id.replace('/', '--')}.log`);
        fs.mkdirSync(path.dirname(log), { recursive: true });
        try {
          await runRinglet(['study', 'run', '--plan', options.planFile, '--cell', cell.id, ...passOn], log);
          ran.push(cell.id);
          options.log(
            `cell ${cell.id}: done in ${((Date.now() - cellStarted) / 1000).toFixed(0)} s → ${cellResultFile(paths, cell)}`,
          );
        } catch (err) {
          failed.push({ cell: cell.id, error: (err as Error).message });
          options.log(`cell ${cell.id}: FAILED: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, todo.length) }, worker));
  }
  return { cells: cells.length, cached: cells.length - todo.length, ran, failed, seconds: (Date.now() - started) / 1000 };
}
