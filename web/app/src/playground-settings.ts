// The playground's form: its fields as typed, their defaults (those of `ringlet generate`), and the
// checks the server makes too (web/server/playground.ts), so most mistakes are named before a request is sent.
import type { PlaygroundRequest } from '../../api';

export interface Settings {
  checkpoint: string;
  prompt: string;
  temperature: string;
  top_k: string;
  top_p: string;
  repetition_penalty: string;
  max_tokens: string;
  seed: string;
}

export type SettingName = keyof Settings;

export const DEFAULT_SETTINGS: Settings = {
  checkpoint: '',
  prompt: '',
  temperature: '0.8',
  top_k: '50',
  top_p: '0.95',
  repetition_penalty: '1.1',
  max_tokens: '200',
  seed: '0',
};

export const MAX_PROMPT_CHARACTERS = 100_000;
export const MAX_TOKENS = 1024;
export const MAX_SEED = 2 ** 31 - 1;
/** Alternatives asked for with each token when probabilities are shown. */
export const ALTERNATIVES = 5;

export type SettingErrors = Partial<Record<SettingName, string>>;

type NumberCheck = (value: number) => string | null;

const numberRules: Record<Exclude<SettingName, 'checkpoint' | 'prompt'>, NumberCheck> = {
  temperature: (t) => (t >= 0 && t <= 2 ? null : 'Temperature is from 0 (always the likeliest token) to 2.'),
  top_k: (k) => (Number.isInteger(k) && k >= 0 && k <= 2 ** 20 ? null : 'Top-k is a whole number from 0 (no limit).'),
  top_p: (p) => (p > 0 && p <= 1 ? null : 'Top-p is above 0 and at most 1 (no limit).'),
  repetition_penalty: (r) => (r > 0 && r <= 10 ? null : 'Repetition penalty is above 0 and at most 10 (1: none).'),
  max_tokens: (n) =>
    Number.isInteger(n) && n >= 1 && n <= MAX_TOKENS ? null : `Max tokens is a whole number from 1 to ${MAX_TOKENS}.`,
  seed: (s) => (Number.isInteger(s) && s >= 0 && s <= MAX_SEED ? null : `The seed is a whole number from 0 to ${MAX_SEED}.`),
};

/** The request the settings make, or what is wrong with each field that stops one. */
export function checkSettings(
  settings: Settings,
  showProbabilities: boolean,
): { request: PlaygroundRequest | null; errors: SettingErrors } {
  const errors: SettingErrors = {};
  if (!settings.checkpoint) errors.checkpoint = 'Pick a checkpoint.';
  if (settings.prompt.length === 0) errors.prompt = 'Write a prompt for the model to continue.';
  else if (settings.prompt.length > MAX_PROMPT_CHARACTERS)
    errors.prompt = `The prompt has ${settings.prompt.length.toLocaleString('en-US')} characters; the most is ${MAX_PROMPT_CHARACTERS.toLocaleString('en-US')}.`;
  const numbers = {} as Record<keyof typeof numberRules, number>;
  for (const [name, check] of Object.entries(numberRules) as Array<[keyof typeof numberRules, NumberCheck]>) {
    const text = settings[name].trim();
    const value = Number(text);
    const problem = text === '' || !Number.isFinite(value) ? 'Enter a number.' : check(value);
    if (problem) errors[name] = problem;
    numbers[name] = value;
  }
  if (Object.keys(errors).length > 0) return { request: null, errors };
  return {
    request: {
      checkpoint: settings.checkpoint,
      prompt: settings.prompt,
      ...numbers,
      top_logprobs: showProbabilities ? ALTERNATIVES : 0,
    },
    errors,
  };
}
