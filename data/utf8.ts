// Streams a file as UTF-8 text, failing on the first invalid byte sequence with the file name and the
// byte offset where that sequence starts. A streaming fatal TextDecoder validates; the offset is only
// worked out on the error path.
import { createReadStream } from 'node:fs';

export class InvalidUtf8Error extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
  ) {
    super(`${file}: invalid UTF-8 at byte offset ${offset}`);
    this.name = 'InvalidUtf8Error';
  }
}

/** Yields the decoded text of `file` chunk by chunk; a character split across chunks is never cut. */
export async function* readUtf8Chunks(file: string, chunkBytes = 1 << 16): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let offset = 0; // bytes of the file before the current chunk
  let pending: Buffer = Buffer.alloc(0); // start of a character the previous chunk cut off
  for await (const chunk of createReadStream(file, { highWaterMark: chunkBytes }) as AsyncIterable<Buffer>) {
    let text: string;
    try {
      text = decoder.decode(chunk, { stream: true });
    } catch {
      const start = offset - pending.length;
      throw new InvalidUtf8Error(file, start + firstInvalidOffset(Buffer.concat([pending, chunk])));
    }
    const tail = Buffer.concat([pending, chunk.subarray(Math.max(0, chunk.length - 4))]);
    pending = tail.subarray(tail.length - incompleteTailLength(tail));
    offset += chunk.length;
    if (text.length > 0) yield text;
  }
  try {
    const rest = decoder.decode();
    if (rest.length > 0) yield rest;
  } catch {
    throw new InvalidUtf8Error(file, offset - pending.length);
  }
}

/** Length of a multi-byte sequence that `bytes` (valid so far) ends in the middle of, else 0. */
function incompleteTailLength(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const needed = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return needed > back ? back : 0;
  }
  return 0;
}

/**
 * Offset of the first malformed sequence in `bytes`, which starts on a character boundary. Lossy
 * decoding turns each malformed sequence into U+FFFD; the first U+FFFD that is not a literal
 * EF BF BD in the input marks it.
 */
function firstInvalidOffset(bytes: Buffer): number {
  let at = 0;
  for (const ch of bytes.toString('utf8')) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0xfffd && !(bytes[at] === 0xef && bytes[at + 1] === 0xbf && bytes[at + 2] === 0xbd)) return at;
    at += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return at;
}
