// A run's checkpoints with their newest scores, one checkpoint's full evaluation below the table, and
// a form to evaluate any of them.
import { useState } from 'preact/hooks';
import type { CheckpointInfo } from '../../../api';
import { whole } from '../format';
import { href } from '../route';
import { formatScore, latestEvaluatedCheckpoint, latestEvaluation } from '../scores';
import { EvaluationForm } from './evaluation-form';
import { ScrollingTable } from './scrolling-table';
import { SuiteScores } from './suite-scores';

interface Props {
  checkpoints: CheckpointInfo[];
  language: string | null;
  onEvaluationSubmitted(): void;
}

/** The status of the newest evaluation when it has no scores (running, or failed). */
function pendingStatus(checkpoint: CheckpointInfo): string | null {
  const newest = [...checkpoint.evaluations].sort((a, b) => a.created_at.localeCompare(b.created_at)).at(-1);
  return newest && Object.keys(newest.suites).length === 0 ? newest.status : null;
}

export function Checkpoints({ checkpoints, language, onEvaluationSubmitted }: Props) {
  const sorted = [...checkpoints].sort((a, b) => b.step - a.step);
  // Until the reader picks one, the newest evaluated checkpoint, which changes as evaluations land.
  const [picked, setShown] = useState<string | null>(null);
  const shown = picked ?? latestEvaluatedCheckpoint(checkpoints)?.id ?? null;
  const [evaluating, setEvaluating] = useState<string | null>(null);
  const suiteNames = [...new Set(sorted.flatMap((checkpoint) => Object.keys(latestEvaluation(checkpoint)?.suites ?? {})))].sort();
  const shownCheckpoint = sorted.find((checkpoint) => checkpoint.id === shown);
  const shownEvaluation = shownCheckpoint && latestEvaluation(shownCheckpoint);
  if (sorted.length === 0) return <p class="muted">No checkpoints yet.</p>;
  return (
    <>
      <ScrollingTable label="Checkpoints">
        <thead>
          <tr>
            <th class="number">Step</th>
            <th>Saved</th>
            {suiteNames.map((suite) => (
              <th key={suite} class="number">
                {suite}
              </th>
            ))}
            <th>Evaluation</th>
            <th>
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((checkpoint) => {
            const evaluation = latestEvaluation(checkpoint);
            const pending = pendingStatus(checkpoint);
            return (
              <tr key={checkpoint.id}>
                <td class="number">{whole(checkpoint.step)}</td>
                <td>{new Date(checkpoint.created_at).toLocaleString()}</td>
                {suiteNames.map((suite) => {
                  const score = evaluation?.suites[suite];
                  return (
                    <td key={suite} class="number">
                      {score ? formatScore(score.metric, score.value) : '–'}
                    </td>
                  );
                })}
                <td>
                  {pending ? (
                    <span class={`badge ${pending === 'failed' ? 'failed' : 'running'}`}>{pending}</span>
                  ) : evaluation ? (
                    'scored'
                  ) : (
                    'none'
                  )}
                </td>
                <td>
                  <div class="actions">
                    {evaluation && (
                      <button type="button" aria-pressed={shown === checkpoint.id} onClick={() => setShown(checkpoint.id)}>
                        Scores
                      </button>
                    )}
                    <button
                      type="button"
                      aria-expanded={evaluating === checkpoint.id}
                      onClick={() => setEvaluating((open) => (open === checkpoint.id ? null : checkpoint.id))}
                    >
                      Evaluate…
                    </button>
                    <a class="button" href={href.playground(checkpoint.id)}>
                      Playground
                    </a>
                  </div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </ScrollingTable>
      {evaluating && (
        <>
          <h3>Evaluate step {whole(sorted.find((checkpoint) => checkpoint.id === evaluating)?.step)}</h3>
          <EvaluationForm key={evaluating} checkpoint={evaluating} language={language} onSubmitted={onEvaluationSubmitted} />
        </>
      )}
      {shownCheckpoint && shownEvaluation && (
        <>
          <h3>
            Scores at step {whole(shownCheckpoint.step)}{' '}
            <span class="muted">(evaluated {new Date(shownEvaluation.created_at).toLocaleString()})</span>
          </h3>
          <SuiteScores evaluation={shownEvaluation} />
        </>
      )}
    </>
  );
}
