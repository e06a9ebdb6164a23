// The fuzz run's results as a table (one row per service) and as the summary object `--json` prints.
import type { Failure, ServiceResult } from './run.js';

export interface FuzzSummary {
  seed: number;
  max_rss_growth_mib: number;
  passed: boolean;
  services: Array<Omit<ServiceResult, 'failures'> & { rss_growth_mib: number | null; passed: boolean; failures: number }>;
  failures: ServiceResult['failures'];
}

/** A service passes with no crash, hang, unclear answer or failed probe, and memory grown by less than the bound. */
export function summarize(results: ServiceResult[], seed: number, maxRssGrowthMiB: number): FuzzSummary {
  const services = results.map(({ failures, ...r }) => {
    const growth = r.rss_before_mib === null || r.rss_after_mib === null ? null : r.rss_after_mib - r.rss_before_mib;
    const bounded = growth === null ? r.rss_before_mib === null && r.crashes === 0 : growth < maxRssGrowthMiB;
    const clean = r.crashes === 0 && r.answers.hang === 0 && r.answers.unclear === 0 && r.failed_probes === 0;
    return { ...r, rss_growth_mib: growth, passed: clean && bounded, failures: failures.length };
  });
  return {
    seed,
    max_rss_growth_mib: maxRssGrowthMiB,
    passed: services.every((s) => s.passed),
    services,
    failures: results.flatMap((r) => r.failures),
  };
}

const mib = (v: number | null) => (v === null ? 'n/a' : v.toFixed(1));

/** A Markdown table, as docs/reliability.md shows it. */
export function table(summary: FuzzSummary): string {
  const head = [
    'service',
    'messages',
    'ok',
    'clear error',
    'unclear',
    'hangs',
    'crashes',
    'RSS before (MiB)',
    'RSS after (MiB)',
    'growth (MiB)',
    'seed',
    'passed',
  ];
  const rows = summary.services.map((s) => [
    s.service,
    String(s.messages),
    String(s.answers.ok),
    String(s.answers.refused),
    String(s.answers.unclear),
    String(s.answers.hang),
    String(s.crashes),
    mib(s.rss_before_mib),
    mib(s.rss_after_mib),
    s.rss_growth_mib === null ? 'n/a' : `${s.rss_growth_mib >= 0 ? '+' : ''}${s.rss_growth_mib.toFixed(1)}`,
    String(s.seed),
    s.passed ? 'yes' : 'NO',
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A failure as the command prints it: what, where, and the command that sends that message again. */
export function failureLine(f: Failure): string {
  return (
    `fuzz ${f.service}: ${f.kind} at message ${f.index} (seed ${f.seed}): ${f.what}: ${f.why}\n` +
    `  replay: ringlet fuzz --service ${f.service} --seed ${f.seed} --index ${f.index}`
  );
}
