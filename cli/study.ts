// `ringlet study`: run a research plan's cells and write its report (study/plan.yml, docs/study.md).
import path from 'node:path';
import { Command } from 'commander';
import { cellDone, cellResultFile } from '../study/cell.js';
import { loadPlan, planCells, type Cell } from '../study/plan.js';
import { planPaths, runPlan, selectCells } from '../study/run.js';
import { writeReport } from '../study/report.js';
import { intArg, numberArg, runCommand } from './output.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const withPlanOptions = (command: Command) =>
  command
    .requiredOption('--plan <file>', 'study plan (YAML or JSON)')
    .option('--scale <f>', 'multiply every token budget (a cluster runs the same plan larger)', numberArg('--scale'), 1)
    .option('--work-dir <dir>', "datasets and checkpoints (default: the plan's work_dir)")
    .option('--results-dir <dir>', "cell and dataset results (default: the plan's results_dir)")
    .option('--json', 'print a JSON summary as the last line');

/** Flags a cell's child process needs to see the same plan the same way. */
function passOn(opts: { scale: number; workDir?: string; resultsDir?: string }): string[] {
  return [
    '--scale',
    String(opts.scale),
    ...(opts.workDir ? ['--work-dir', opts.workDir] : []),
    ...(opts.resultsDir ? ['--results-dir', opts.resultsDir] : []),
  ];
}

function cellAt(cells: Cell[], index: number): Cell {
  if (index < 0 || index >= cells.length) throw new Error(`--cell-index ${index}: the plan has cells 0 to ${cells.length - 1}`);
  return cells[index];
}

const runSubcommand = withPlanOptions(new Command('run'))
  .description("prepare the plan's datasets and run its cells, one process per core; done cells are skipped")
  .option('--cell <id>', 'run only this cell, in this process (repeatable; a cluster job runs one)', collect)
  .option(
    '--cell-index <n>',
    "run only the plan's n-th cell (from 0, as `study cells` lists them): an indexed cluster job's",
    intArg('--cell-index'),
  )
  .option('--prepare-only', "prepare the plan's datasets and stop (a cluster does this once, before the cells' jobs)")
  .option('--jobs <n>', 'cells at once (default: one per core)', intArg('--jobs'))
  .action((opts) =>
    runCommand(opts, async () => {
      const plan = loadPlan(opts.plan);
      const paths = planPaths(plan, opts.plan, opts);
      const log = (line: string) => process.stderr.write(`study: ${line}\n`);
      const only =
        opts.cellIndex === undefined
          ? opts.cell
          : [cellAt(planCells(plan, paths.planDir, opts.scale), opts.cellIndex).id, ...(opts.cell ?? [])];
      const summary = await runPlan(
        plan,
        paths,
        { planFile: opts.plan, scale: opts.scale, jobs: opts.jobs, only, prepareOnly: Boolean(opts.prepareOnly), log },
        passOn(opts),
      );
      if (summary.failed.length > 0)
        throw new Error(
          `${summary.failed.length} cells failed: ${summary.failed.map((f) => `${f.cell}: ${f.error}`).join('; ')}`,
        );
      return { ...summary, results_dir: paths.resultsDir };
    }),
  );

const cellsSubcommand = withPlanOptions(new Command('cells'))
  .description("list the plan's cells with their hashes and whether each is done")
  .action((opts) =>
    runCommand({ ...opts, omitFromHuman: ['cells'] }, async () => {
      const plan = loadPlan(opts.plan);
      const paths = planPaths(plan, opts.plan, opts);
      const cells = selectCells(planCells(plan, paths.planDir, opts.scale)).map((c, index) => ({
        index,
        id: c.id,
        hash: c.hash,
        budget_bytes: c.budgetBytes,
        done: cellDone(paths, c),
        result: cellResultFile(paths, c),
      }));
      if (!opts.json) for (const c of cells) process.stdout.write(`${c.done ? 'done ' : 'to do'}  ${c.id}\n`);
      return { cells, done: cells.filter((c) => c.done).length, total: cells.length };
    }),
  );

const reportSubcommand = withPlanOptions(new Command('report'))
  .description("write the study's report (tables and SVG figures) from the results")
  .option('--out <file>', 'the report to write', 'docs/study.md')
  .option('--answer <file>', "hand-written text whose {{placeholders}} the report fills (default: the plan's answer)")
  .action((opts) =>
    runCommand(opts, async () => {
      const plan = loadPlan(opts.plan);
      const paths = planPaths(plan, opts.plan, opts);
      const answer = opts.answer ?? (plan.answer === undefined ? undefined : path.resolve(paths.planDir, plan.answer));
      return { ...(await writeReport({ plan, paths, out: opts.out, answer })) };
    }),
  );

export const studyCommand = new Command('study')
  .description('a research study: a plan of training runs and evaluations, and its report')
  .addCommand(runSubcommand)
  .addCommand(cellsSubcommand)
  .addCommand(reportSubcommand);
