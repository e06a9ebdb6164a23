// The playground's output: the prompt, then the generated tokens. With probabilities shown, each token is
// coloured by how likely the model found it; one token at a time is picked (click, or focus and arrow
// keys: a single tab stop, however long the text) to list the alternatives the model weighed there.
import { useState } from 'preact/hooks';
import type { TokenEvent } from '../../../api';

/** Probability bands, likeliest first; a token's band is the first whose floor it reaches. */
const BANDS = [
  { floor: 0.5, label: '≥ 50 %' },
  { floor: 0.2, label: '20–50 %' },
  { floor: 0.05, label: '5–20 %' },
  { floor: 0.01, label: '1–5 %' },
  { floor: 0, label: '< 1 %' },
];

const band = (logprob: number) => BANDS.findIndex((b) => Math.exp(logprob) >= b.floor) + 1;
const probability = (logprob: number) => `${(Math.exp(logprob) * 100).toFixed(1)} %`;
/** Whitespace made visible, so an alternative that is a space or a newline can be read. */
const visible = (text: string) => (text === '' ? '∅' : text.replace(/ /g, '␣').replace(/\n/g, '↵'));

function ProbabilityLegend() {
  return (
    <ul class="legend" aria-label="Token colours by probability">
      {BANDS.map((b, i) => (
        <li key={b.label}>
          <span class="swatch" style={{ background: `var(--prob-${i + 1})` }} />
          {b.label}
        </li>
      ))}
    </ul>
  );
}

interface Props {
  prompt: string;
  tokens: TokenEvent[];
  showProbabilities: boolean;
  busy: boolean;
}

export function TokenOutput({ prompt, tokens, showProbabilities, busy }: Props) {
  const [picked, setPicked] = useState<number | null>(null);
  // Tokens whose text is '' are the first halves of a split UTF-8 character: nothing to show or pick.
  const shown = tokens.filter((token) => token.text !== '');
  const pickedToken = shown.find((token) => token.index === picked) ?? null;
  const tabStop = pickedToken?.index ?? shown[0]?.index;

  function moveWithKeys(event: KeyboardEvent) {
    const position = shown.findIndex((token) => token.index === picked);
    const target = { ArrowRight: position + 1, ArrowLeft: position - 1, Home: 0, End: shown.length - 1 }[event.key];
    if (target === undefined || !shown[target]) return;
    event.preventDefault();
    (event.currentTarget as HTMLElement).querySelector<HTMLElement>(`[data-index="${shown[target].index}"]`)?.focus();
  }

  return (
    <>
      <div
        class="output"
        aria-busy={busy}
        aria-label="Output"
        role="group"
        onKeyDown={showProbabilities ? moveWithKeys : undefined}
      >
        <span class="prompt">{prompt}</span>
        {shown.map((token) =>
          showProbabilities ? (
            <span
              key={token.index}
              class="token scored"
              data-index={token.index}
              data-bucket={band(token.logprob)}
              role="button"
              tabIndex={token.index === tabStop ? 0 : -1}
              aria-pressed={token.index === picked}
              aria-label={`${token.text.trim() || visible(token.text)}, ${probability(token.logprob)}`}
              onFocus={() => setPicked(token.index)}
              onClick={() => setPicked(token.index)}
            >
              {token.text}
            </span>
          ) : (
            <span key={token.index} class="token">
              {token.text}
            </span>
          ),
        )}
      </div>
      {showProbabilities && (
        <>
          <ProbabilityLegend />
          {pickedToken ? (
            <Alternatives token={pickedToken} />
          ) : (
            shown.length > 0 && <p class="muted">Pick a token to see the alternatives the model weighed.</p>
          )}
        </>
      )}
    </>
  );
}

function Alternatives({ token }: { token: TokenEvent }) {
  return (
    <section class="panel" aria-live="polite">
      <h3>
        Token {token.index + 1}: <code>{visible(token.text)}</code> — {probability(token.logprob)}
      </h3>
      {token.top.length === 0 ? (
        <p class="muted">No alternatives were sent for this token: generate again with probabilities shown.</p>
      ) : (
        <ul class="bars" aria-label="Alternatives">
          {token.top.map((alternative) => (
            <li key={alternative.text}>
              <code class="name">
                {visible(alternative.text)}
                {alternative.text === token.text ? ' (chosen)' : ''}
              </code>
              <span class="track" aria-hidden="true">
                <span class="fill" style={{ width: `${Math.exp(alternative.logprob) * 100}%` }} />
              </span>
              <span class="value">{probability(alternative.logprob)}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
