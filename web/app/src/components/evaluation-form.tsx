// Asks the evaluator to score one checkpoint. A server reachable from other machines wants the
// evaluator's token for this; the token field appears when the server says so (401).
import { useState } from 'preact/hooks';
import { ApiError, submitEvaluation } from '../api';
import { errorMessage } from '../use-request';
import { NumberField } from './number-field';

const SUITES = ['val', 'blimp', 'dalaj'];

/** BLiMP is English and DaLAJ Swedish: a run's language picks which of them is ticked at first. */
function suitesFor(language: string | null): string[] {
  const code = language?.toLowerCase() ?? '';
  if (/^(en|eng)/.test(code)) return ['val', 'blimp'];
  if (/^(sv|swe)/.test(code)) return ['val', 'dalaj'];
  return ['val'];
}

interface Props {
  checkpoint: string;
  language: string | null;
  onSubmitted(): void;
}

export function EvaluationForm({ checkpoint, language, onSubmitted }: Props) {
  const [suites, setSuites] = useState(() => suitesFor(language));
  const [limit, setLimit] = useState('200');
  const [token, setToken] = useState<string | null>(null);
  const [state, setState] = useState<{ sending: boolean; error: string | null; sent: boolean }>({
    sending: false,
    error: null,
    sent: false,
  });
  const limitNumber = limit.trim() === '' ? undefined : Number(limit);
  const limitError =
    limitNumber !== undefined && !(Number.isInteger(limitNumber) && limitNumber >= 1)
      ? 'The limit is a whole number from 1, or empty for all items.'
      : null;
  const idBase = `evaluate-${checkpoint.replace(/[^a-z0-9]+/gi, '-')}`;

  async function submit(event: Event) {
    event.preventDefault();
    if (limitError || suites.length === 0) return;
    setState({ sending: true, error: null, sent: false });
    try {
      await submitEvaluation({ checkpoint, suites, limit: limitNumber }, token);
      setState({ sending: false, error: null, sent: true });
      onSubmitted();
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401 && token === null) setToken('');
      setState({ sending: false, error: errorMessage(failure), sent: false });
    }
  }

  return (
    <form class="panel" onSubmit={submit} aria-label={`Evaluate ${checkpoint}`}>
      <fieldset class="plain">
        <legend class="sr-only">Suites</legend>
        <div class="toolbar">
          {SUITES.map((suite) => (
            <label class="inline" key={suite}>
              <input
                type="checkbox"
                checked={suites.includes(suite)}
                onChange={() =>
                  setSuites((ticked) => (ticked.includes(suite) ? ticked.filter((s) => s !== suite) : [...ticked, suite]))
                }
              />
              {suite}
            </label>
          ))}
        </div>
      </fieldset>
      <div class="toolbar">
        <NumberField
          id={`${idBase}-limit`}
          label="Items per group (empty: all)"
          value={limit}
          error={limitError ?? undefined}
          min={1}
          step={1}
          onInput={setLimit}
        />
        {token !== null && (
          <div>
            <label for={`${idBase}-token`}>Evaluator token</label>
            <input
              id={`${idBase}-token`}
              type="password"
              autocomplete="off"
              value={token}
              onInput={(e) => setToken(e.currentTarget.value)}
            />
          </div>
        )}
      </div>
      {suites.length === 0 && <p class="field-error">Tick at least one suite.</p>}
      <div class="buttons">
        <button type="submit" class="primary" disabled={state.sending || suites.length === 0 || limitError !== null}>
          {state.sending ? 'Submitting…' : 'Submit evaluation'}
        </button>
      </div>
      <div role="status">
        {state.error && <p class="error">{state.error}</p>}
        {state.sent && <p>Submitted. The scores appear in this table when the evaluation has finished.</p>}
      </div>
    </form>
  );
}
