// How numbers read on every page. A value the run never recorded is null and shows as a dash, never 0.

const DASH = '–';

/** 1234 → 1.23k, 4.5e6 → 4.50M: counts of tokens, parameters, steps. */
export function count(value: number | null | undefined): string {
  if (value == null) return DASH;
  const units: Array<[number, string]> = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, unit] of units) if (Math.abs(value) >= size) return `${(value / size).toPrecision(3)}${unit}`;
  return String(Math.round(value));
}

/** An exact count with thousands separators: steps, items. */
export const whole = (value: number | null | undefined) => (value == null ? DASH : Math.round(value).toLocaleString('en-US'));

export const fixed = (value: number | null | undefined, digits: number) => (value == null ? DASH : value.toFixed(digits));

export const percent = (fraction: number | null | undefined, digits = 1) =>
  fraction == null ? DASH : `${(fraction * 100).toFixed(digits)} %`;

/** A quantity in a unit that takes SI prefixes, with three significant digits: 1530 J → 1.53 kJ. */
function scaled(value: number | null | undefined, unit: string): string {
  if (value == null) return DASH;
  const prefixes: Array<[number, string]> = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
    [1, ''],
    [1e-3, 'm'],
  ];
  const [size, prefix] = prefixes.find(([size]) => Math.abs(value) >= size) ?? prefixes.at(-1)!;
  return `${(value / size).toPrecision(3)} ${prefix}${unit}`;
}

export const joules = (value: number | null | undefined) => scaled(value, 'J');
export const grams = (value: number | null | undefined) => scaled(value, 'g');

/** "3 min ago", for the time a run last wrote. */
export function ago(iso: string | null): string {
  if (!iso) return DASH;
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
