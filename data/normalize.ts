// Text normalisation applied to every paragraph before filtering and tokenisation: Unicode NFC,
// control and invisible formatting characters removed, whitespace runs collapsed, lines trimmed.
// A newline survives only inside a paragraph (verse lines); punctuation is left as written.

// C0/C1 controls other than the whitespace ones, plus invisible characters that carry no text:
// soft hyphen, zero-width space, word joiner, byte-order mark. Zero-width (non-)joiners stay: emoji
// sequences and some scripts need them.
const INVISIBLE = /[\u0000-\u0008\u000e-\u001f\u007f-\u009f\u00ad\u200b\u2060\ufeff]/g;
const SPACE_RUN = /[^\S\n]+/g; // any whitespace except newline, including tabs, NBSP, em spaces, \r

/** Normalises one paragraph; returns '' when nothing but whitespace and controls is left. */
export function normalizeParagraph(text: string): string {
  const lines = text.replace(INVISIBLE, '').replace(SPACE_RUN, ' ').split('\n');
  const kept: string[] = [];
  for (const line of lines) {
    const trimmed = line.trim();
    if (trimmed.length > 0) kept.push(trimmed);
  }
  return kept.join('\n').normalize('NFC');
}
