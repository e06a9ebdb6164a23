// The hand-written answer (study/answer.md) quotes the report's numbers as {{name}} placeholders, so its
// prose can never drift from the results: each is filled from the figures the report computed, and a
// name the report does not know stops it.

/** A named figure: its value and the text the report prints for it. */
export interface NamedValue {
  value: number;
  text: string;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

export function fillTemplate(template: string, values: Record<string, NamedValue>, source = 'the answer'): string {
  const unknown = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]).filter((name) => !(name in values));
  if (unknown.length > 0) {
    const prefixes = new Set(unknown.map((name) => name.split('.')[0]));
    const near = Object.keys(values).filter((name) => prefixes.has(name.split('.')[0]));
    throw new Error(
      `${source} names figures the report does not compute: ${[...new Set(unknown)].join(', ')}` +
        (near.length > 0 ? `; figures under the same heads: ${near.join(', ')}` : ''),
    );
  }
  return template.replace(PLACEHOLDER, (_, name: string) => values[name].text);
}
