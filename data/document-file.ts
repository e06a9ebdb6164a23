// Temporary text files that carry whole documents between the passes of `prepare`: each document's
// text, then a line holding only U+001E (record separator). Normalised text never contains control
// characters, so the separator cannot occur inside a document. The tokenizer trainer reads these files
// line by line, and a line with a single symbol gives it nothing to merge, so the train file doubles
// as the tokenizer's training text.
import { open, type FileHandle } from 'node:fs/promises';
import { readUtf8Chunks } from './utf8.js';

const DOCUMENT_END = '\u001e';

export class DocumentFileWriter {
  private constructor(private readonly handle: FileHandle) {}

  static async create(file: string): Promise<DocumentFileWriter> {
    return new DocumentFileWriter(await open(file, 'w'));
  }

  async write(text: string): Promise<void> {
    await this.handle.write(`${text}\n${DOCUMENT_END}\n`);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** The documents of a file written by DocumentFileWriter, one at a time. */
export async function* readDocuments(file: string): AsyncGenerator<string> {
  let lines: string[] = [];
  let partial = '';
  for await (const chunk of readUtf8Chunks(file)) {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      if (line === DOCUMENT_END) {
        yield lines.join('\n');
        lines = [];
      } else {
        lines.push(line);
      }
    }
  }
  if (partial.length > 0 || lines.length > 0) throw new Error(`${file}: last document is not terminated`);
}

/**
 * A document's text cut at its paragraph breaks into chunks whose encodings, concatenated, equal
 * the encoding of the whole: paragraph i becomes "\n" + paragraph + "\n" (no leading newline on the
 * first, no trailing one on the last). Paragraphs start and end with a non-space character, so the
 * byte-level pre-tokenizer splits the "\n\n" between two of them into "\n" and "\n" either way, and
 * BPE never merges across pieces.
 */
export function paragraphChunks(text: string): string[] {
  const paragraphs = text.split('\n\n');
  const last = paragraphs.length - 1;
  return paragraphs.map((p, i) => `${i > 0 ? '\n' : ''}${p}${i < last ? '\n' : ''}`);
}
