// Reading the evaluator's results: which evaluation of a checkpoint to show, and how a suite's numbers
// are written.
import type { CheckpointInfo, EvaluationSummary, SuiteScore } from '../../api';
import { percent } from './format';

const isAccuracy = (metric: string) => metric.includes('accuracy');

export const formatScore = (metric: string, value: number) =>
  isAccuracy(metric) ? percent(value) : Math.abs(value) >= 1000 ? value.toFixed(0) : value.toFixed(3);

/** A difference in the suite's own units: percentage points for an accuracy. */
export const formatDifference = (metric: string, value: number) =>
  `${value >= 0 ? '+' : '−'}${isAccuracy(metric) ? `${(Math.abs(value) * 100).toFixed(1)} pt` : Math.abs(value).toFixed(3)}`;

export const formatInterval = (score: SuiteScore) =>
  score.ci_low == null || score.ci_high == null
    ? ''
    : `[${formatScore(score.metric, score.ci_low)}, ${formatScore(score.metric, score.ci_high)}]`;

/** The newest evaluation that has scores; one still running or failed has none to show yet. */
export function latestEvaluation(checkpoint: CheckpointInfo): EvaluationSummary | null {
  const scored = checkpoint.evaluations.filter((evaluation) => Object.keys(evaluation.suites).length > 0);
  return scored.sort((a, b) => a.created_at.localeCompare(b.created_at)).at(-1) ?? null;
}

/** The run's newest checkpoint that has been evaluated. */
export const latestEvaluatedCheckpoint = (checkpoints: CheckpointInfo[]) =>
  [...checkpoints].sort((a, b) => a.step - b.step).findLast((checkpoint) => latestEvaluation(checkpoint) !== null) ?? null;
