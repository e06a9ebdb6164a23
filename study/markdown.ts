// Markdown and number formatting for the study report.

/** Markdown blocks, the empty ones left out. */
export function section(...blocks: string[]): string {
  return blocks.filter((b) => b !== '').join('\n\n');
}

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

export function fixed(x: number, digits: number): string {
  const text = x.toFixed(digits);
  // -0.000 reads as a sign the data does not have.
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

export function count(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

export function quote(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

/** A fenced block longer than any backtick run in the text, so generated text cannot close it. */
export function fence(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const f = '`'.repeat(longest + 1);
  return `${f}text\n${text}\n${f}`;
}

export function sum(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0);
}

export function mean(xs: number[]): number {
  return sum(xs) / xs.length;
}
