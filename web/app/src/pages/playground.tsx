// The playground: pick a checkpoint, write a prompt, set the sampler, and watch tokens stream in.
// Stop closes the stream, and the server stops generating when its client goes.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { CheckpointInfo, DoneEvent, TokenEvent } from '../../../api';
import { ApiError, generate, getCheckpoints, isAbort } from '../api';
import { FieldError, invalidWhen } from '../components/field-error';
import { NumberField } from '../components/number-field';
import { TokenOutput } from '../components/token-output';
import { count, fixed, whole } from '../format';
import {
  checkSettings,
  DEFAULT_SETTINGS,
  MAX_SEED,
  MAX_TOKENS,
  type SettingErrors,
  type SettingName,
  type Settings,
} from '../playground-settings';
import { href } from '../route';
import { errorMessage, useRequest } from '../use-request';

interface Generation {
  state: 'running' | 'finished' | 'stopped' | 'failed';
  prompt: string;
  tokens: TokenEvent[];
  startedAt: number;
  /** When the newest token arrived, for the live tokens/s. */
  lastTokenAt: number | null;
  firstTokenAt: number | null;
  done: DoneEvent | null;
}

function CheckpointSelect({
  checkpoints,
  value,
  error,
  onChange,
}: {
  checkpoints: CheckpointInfo[];
  value: string;
  error: string | undefined;
  onChange(id: string): void;
}) {
  const runs = [...new Set(checkpoints.map((checkpoint) => checkpoint.run))].sort();
  const known = checkpoints.some((checkpoint) => checkpoint.id === value);
  return (
    <div>
      <label for="checkpoint">Checkpoint</label>
      <select
        id="checkpoint"
        value={value}
        onChange={(e) => onChange(e.currentTarget.value)}
        {...invalidWhen('checkpoint', error)}
      >
        {!known && <option value={value}>{value || 'Pick a checkpoint…'}</option>}
        {runs.map((run) => (
          <optgroup key={run} label={run}>
            {checkpoints
              .filter((checkpoint) => checkpoint.run === run)
              .sort((a, b) => b.step - a.step)
              .map((checkpoint) => (
                <option key={checkpoint.id} value={checkpoint.id}>
                  {run} · step {whole(checkpoint.step)} · {checkpoint.preset ?? 'custom'} · {count(checkpoint.parameters)}{' '}
                  parameters
                </option>
              ))}
          </optgroup>
        ))}
      </select>
      <FieldError fieldId="checkpoint" message={error} />
    </div>
  );
}

function GenerationStats({ generation }: { generation: Generation }) {
  const { done } = generation;
  if (done)
    return (
      <p class="generation-stats" role="status">
        <span>
          {whole(done.tokens)} tokens ({done.stopped.replace(/_/g, ' ')})
        </span>
        <span>{fixed(done.tokens_per_s, 1)} tokens/s</span>
        <span>first token {Math.round(done.first_token_ms)} ms</span>
        <span>
          {done.energy_j_per_1k_tokens == null
            ? 'energy not measured'
            : `${done.energy_estimated ? '≈ ' : ''}${fixed(done.energy_j_per_1k_tokens, 2)} J per 1000 tokens${done.energy_estimated ? ' (estimated)' : ''}`}
        </span>
      </p>
    );
  const seconds =
    generation.firstTokenAt && generation.lastTokenAt ? (generation.lastTokenAt - generation.firstTokenAt) / 1000 : 0;
  const rate = seconds > 0 ? (generation.tokens.length - 1) / seconds : null;
  return (
    <p class="generation-stats">
      <span>{whole(generation.tokens.length)} tokens</span>
      <span>{rate == null ? '– tokens/s' : `${fixed(rate, 1)} tokens/s`}</span>
      {generation.firstTokenAt && <span>first token {Math.round(generation.firstTokenAt - generation.startedAt)} ms</span>}
      {generation.state === 'running' && <span>generating…</span>}
      {generation.state === 'stopped' && <span role="status">stopped</span>}
    </p>
  );
}

/** The newest checkpoint of all: what a reader most likely wants to try. */
const newest = (checkpoints: CheckpointInfo[]) =>
  [...checkpoints].sort((a, b) => a.created_at.localeCompare(b.created_at)).at(-1)?.id ?? '';

export function PlaygroundPage({ initialCheckpoint }: { initialCheckpoint: string | null }) {
  const checkpoints = useRequest((signal) => getCheckpoints(signal), []);
  const [settings, setSettings] = useState<Settings>({ ...DEFAULT_SETTINGS, checkpoint: initialCheckpoint ?? '' });
  const [showProbabilities, setShowProbabilities] = useState(false);
  // Field errors appear once Generate has been pressed, then follow the typing.
  const [checked, setChecked] = useState(false);
  const [serverError, setServerError] = useState<{ field: SettingName | null; message: string } | null>(null);
  const [generation, setGeneration] = useState<Generation | null>(null);
  const stream = useRef<AbortController | null>(null);

  useEffect(() => {
    if (!settings.checkpoint && checkpoints.data) set('checkpoint', newest(checkpoints.data.checkpoints));
  }, [checkpoints.data]);
  // Leaving the page stops a generation still running.
  useEffect(() => () => stream.current?.abort(), []);

  function set(name: SettingName, value: string) {
    setSettings((current) => ({ ...current, [name]: value }));
    setServerError(null);
    // The address names the checkpoint, so a link brings the same model back; no new history entry.
    if (name === 'checkpoint') history.replaceState(null, '', href.playground(value));
  }

  const { errors: fieldErrors } = checkSettings(settings, showProbabilities);
  const errors: SettingErrors = checked ? { ...fieldErrors } : {};
  if (serverError?.field) errors[serverError.field] = serverError.message;
  const running = generation?.state === 'running';

  async function start() {
    setChecked(true);
    setServerError(null);
    const { request, errors: problems } = checkSettings(settings, showProbabilities);
    if (!request) {
      const first = Object.keys(problems)[0];
      document.getElementById(first === 'checkpoint' ? 'checkpoint' : `setting-${first}`)?.focus();
      return;
    }
    const controller = new AbortController();
    stream.current = controller;
    const startedAt = performance.now();
    setGeneration({
      state: 'running',
      prompt: request.prompt,
      tokens: [],
      startedAt,
      firstTokenAt: null,
      lastTokenAt: null,
      done: null,
    });
    // Tokens are drawn once per frame, not once each: a fast model sends hundreds a second.
    let arrived: TokenEvent[] = [];
    let frame = 0;
    const draw = () => {
      frame = 0;
      const batch = arrived;
      arrived = [];
      const now = performance.now();
      setGeneration((g) => g && { ...g, tokens: [...g.tokens, ...batch], firstTokenAt: g.firstTokenAt ?? now, lastTokenAt: now });
    };
    const finish = (state: Generation['state'], done: DoneEvent | null = null) => {
      cancelAnimationFrame(frame);
      const batch = arrived;
      setGeneration((g) => g && { ...g, state, done, tokens: [...g.tokens, ...batch] });
    };
    let done: DoneEvent | null = null;
    try {
      await generate(
        request,
        {
          token(event) {
            arrived.push(event);
            if (!frame) frame = requestAnimationFrame(draw);
          },
          done: (event) => (done = event),
        },
        controller.signal,
      );
      finish('finished', done);
    } catch (failure) {
      if (isAbort(failure)) return finish('stopped');
      finish('failed');
      const field =
        failure instanceof ApiError && failure.param && failure.param in settings ? (failure.param as SettingName) : null;
      setServerError({ field, message: errorMessage(failure) });
    } finally {
      if (stream.current === controller) stream.current = null;
    }
  }

  const numberField = (name: SettingName, label: string, step: number | 'any', min?: number, max?: number) => (
    <NumberField
      id={`setting-${name}`}
      label={label}
      value={settings[name]}
      error={errors[name]}
      min={min}
      max={max}
      step={step}
      onInput={(value) => set(name, value)}
    />
  );

  return (
    <>
      <h1>Playground</h1>
      {/* noValidate: the browser's own step checks would block a valid 0.83; checkSettings says what is wrong. */}
      <form
        class="playground"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!running) start();
        }}
      >
        <div class="input">
          {checkpoints.error && <p class="error">{checkpoints.error}</p>}
          {checkpoints.data && checkpoints.data.checkpoints.length === 0 && (
            <p class="muted">No checkpoints yet: train a model first (see the runs page).</p>
          )}
          <CheckpointSelect
            checkpoints={checkpoints.data?.checkpoints ?? []}
            value={settings.checkpoint}
            error={errors.checkpoint}
            onChange={(id) => set('checkpoint', id)}
          />
          <div class="spaced">
            <label for="setting-prompt">Prompt</label>
            <textarea
              id="setting-prompt"
              value={settings.prompt}
              placeholder="Det var en gång…"
              onInput={(e) => set('prompt', e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                  e.preventDefault();
                  if (!running) start();
                }
              }}
              {...invalidWhen('setting-prompt', errors.prompt)}
            />
            <FieldError fieldId="setting-prompt" message={errors.prompt} />
            <p class="hint">Ctrl+Enter generates.</p>
          </div>
          <div class="buttons">
            <button type="submit" class="primary" disabled={running}>
              Generate
            </button>
            <button type="button" disabled={!running} onClick={() => stream.current?.abort()}>
              Stop
            </button>
            <label class="inline">
              <input
                type="checkbox"
                checked={showProbabilities}
                onChange={(e) => setShowProbabilities(e.currentTarget.checked)}
              />
              Show probabilities
            </label>
          </div>
          {serverError && !serverError.field && (
            <p class="error" role="alert">
              {serverError.message}
            </p>
          )}
        </div>
        <section class="result" aria-labelledby="output-heading">
          <h2 id="output-heading">Output</h2>
          {generation ? (
            <>
              <GenerationStats generation={generation} />
              <TokenOutput
                prompt={generation.prompt}
                tokens={generation.tokens}
                showProbabilities={showProbabilities}
                busy={running}
              />
            </>
          ) : (
            <p class="muted">The continuation appears here as it is generated.</p>
          )}
        </section>
        <fieldset class="settings plain">
          <legend class="sr-only">Sampling</legend>
          {numberField('temperature', 'Temperature', 0.05, 0, 2)}
          {numberField('top_k', 'Top-k', 1, 0)}
          {numberField('top_p', 'Top-p', 0.01, 0, 1)}
          {numberField('repetition_penalty', 'Repetition penalty', 0.05, 0, 10)}
          {numberField('max_tokens', 'Max tokens', 1, 1, MAX_TOKENS)}
          {numberField('seed', 'Seed', 1, 0, MAX_SEED)}
        </fieldset>
      </form>
    </>
  );
}
