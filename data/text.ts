// Reads a plain-text file as raw paragraphs: paragraphs are separated by blank lines, and the lines
// of one paragraph are joined with a space because plain-text corpora (e.g. Project Gutenberg) wrap
// prose at a fixed width. The file is streamed; invalid UTF-8 fails with the byte offset.
import { readUtf8Chunks } from './utf8.js';

/** Raw (unnormalised) paragraphs of `file`, in order. */
export async function readTextParagraphs(file: string): Promise<string[]> {
  const paragraphs: string[] = [];
  let lines: string[] = [];
  let partial = ''; // text after the last newline seen so far
  const takeLine = (line: string): void => {
    if (line.trim().length > 0) {
      lines.push(line);
    } else if (lines.length > 0) {
      paragraphs.push(lines.join(' '));
      lines = [];
    }
  };
  for await (const chunk of readUtf8Chunks(file)) {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) takeLine(line);
  }
  takeLine(partial);
  takeLine('');
  return paragraphs;
}
