// Mutations of a valid JSON request body: structured (a field dropped, added, given the wrong type, an
// extreme number, a huge string or array, deep nesting, a prototype key) or on the text (cut, bytes flipped,
// junk inserted, a BOM, trailing garbage, not JSON at all). Every choice comes from the caller's seeded Rng.
import type { Rng } from '../../lm/rng.js';
import { pick, randomBytes, randomText } from './draw.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// Values of every JSON type, and numbers JSON can write but a schema should not take.
const ODD_VALUES: Array<[string, string]> = [
  ['null', 'null'],
  ['true', 'true'],
  ['a string', '"x"'],
  ['an empty string', '""'],
  ['an empty array', '[]'],
  ['an empty object', '{}'],
  ['-1', '-1'],
  ['0', '0'],
  ['1e309', '1e309'],
  ['-1e309', '-1e309'],
  ['2^53+1', '9007199254740993'],
  ['1e-400', '1e-400'],
  ['-0', '-0'],
  ['0.5', '0.5'],
  ['a lone surrogate', '"\\ud800"'],
  ['a NUL', '"a\\u0000b"'],
  ['a 100 KB string', JSON.stringify('s'.repeat(100_000))],
  ['an array of 100,000 nulls', `[${Array(100_000).fill('null').join(',')}]`],
  ['50,000 levels of arrays', `${'['.repeat(50_000)}${']'.repeat(50_000)}`],
  ['a __proto__ object', '{"__proto__": {"polluted": true}}'],
];

/** `valid` (a JSON object) as request body text with one mutation; `what` says which. */
export function mutateJson(rng: Rng, valid: Record<string, Json>): { what: string; text: string } {
  const keys = Object.keys(valid);
  const text = JSON.stringify(valid);
  const withKey = (key: string, raw: string) => {
    const rest = Object.entries(valid).filter(([k]) => k !== key);
    return `{${[...rest.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`), `${JSON.stringify(key)}:${raw}`].join(',')}}`;
  };
  switch (pick(rng, ['field', 'field', 'field', 'drop', 'extra', 'duplicate', 'text', 'text', 'whole'])) {
    case 'field': {
      const key = pick(rng, keys);
      const [name, raw] = pick(rng, ODD_VALUES);
      return { what: `${key} set to ${name}`, text: withKey(key, raw) };
    }
    case 'drop': {
      const key = pick(rng, keys);
      const { [key]: _dropped, ...rest } = valid;
      return { what: `without ${key}`, text: JSON.stringify(rest) };
    }
    case 'extra': {
      const [name, raw] = pick(rng, ODD_VALUES);
      const key = pick(rng, ['unknown', '__proto__', 'constructor', '', randomText(rng, 8)]);
      return { what: `an extra field ${JSON.stringify(key)} of ${name}`, text: withKey(key, raw) };
    }
    case 'duplicate': {
      const key = pick(rng, keys);
      return { what: `${key} twice`, text: `${text.slice(0, -1)},${JSON.stringify(key)}:${pick(rng, ODD_VALUES)[1]}}` };
    }
    case 'text': {
      const at = rng.int(text.length + 1);
      const edits: Array<[string, () => string]> = [
        ['cut short', () => text.slice(0, at)],
        [
          'a byte flipped',
          () => text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ (1 << rng.int(7))) + text.slice(at + 1),
        ],
        ['junk inserted', () => text.slice(0, at) + randomText(rng, 1 + rng.int(8)) + text.slice(at)],
        ['a byte-order mark first', () => `\ufeff${text}`],
        ['trailing garbage', () => `${text}}]x`],
        ['two objects', () => text + text],
        ['single quotes', () => text.replace(/"/g, "'")],
        ['a comment', () => `/* c */${text}`],
      ];
      const [what, edit] = pick(rng, edits);
      return { what: `JSON ${what}`, text: edit() };
    }
    default: {
      const [what, body] = pick(rng, [
        ['an empty body', ''],
        ['null', 'null'],
        ['an array', `[${text}]`],
        ['a bare string', '"checkpoint"'],
        ['NaN', 'NaN'],
        ['random bytes', randomBytes(rng, 1 + rng.int(64)).toString('latin1')],
        ['whitespace', ' \t\r\n '],
      ] as Array<[string, string]>);
      return { what, text: body };
    }
  }
}
