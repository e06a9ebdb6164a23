// Binary token shards: the tokens of one split, documents back to back, each followed by the
// end-of-document token, stored as little-endian uint16 (vocabulary <= 65536) or uint32 in files of
// at most `shardTokens` tokens named train-000.bin, val-000.bin, ... A shard is written to a
// temporary file, fsynced and renamed, and its sha256 recorded in the manifest; openSplit checks
// every shard's size and hash against the manifest before handing out tokens.
import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import path from 'node:path';
import { fsyncDir } from '../lm/atomic-write.js';
import { readManifest, type ShardEntry } from './manifest.js';
import type { SplitName } from './split.js';

export type TokenDtype = 'uint16' | 'uint32';
export type TokenArray = Uint16Array | Uint32Array;

export const DEFAULT_SHARD_TOKENS = 1 << 24;

export function dtypeForVocab(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

function bytesPerToken(dtype: TokenDtype): number {
  return dtype === 'uint16' ? 2 : 4;
}

function allocate(dtype: TokenDtype, length: number): TokenArray {
  return dtype === 'uint16' ? new Uint16Array(length) : new Uint32Array(length);
}

// Typed arrays use the host's byte order; the format is little-endian.
function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('token shards are little-endian; big-endian hosts are not supported');
}

export function shardName(split: SplitName, index: number): string {
  return `${split}-${String(index).padStart(3, '0')}.bin`;
}

interface OpenShard {
  name: string;
  tmp: string;
  handle: FileHandle;
  hash: Hash;
  tokens: number;
}

/** Appends tokens to the shards of one split, starting a new shard every `shardTokens` tokens. */
export class ShardWriter {
  private readonly buffer: TokenArray;
  private buffered = 0;
  private current: OpenShard | null = null;
  private readonly written: ShardEntry[] = [];

  constructor(
    private readonly dir: string,
    private readonly split: SplitName,
    private readonly dtype: TokenDtype,
    private readonly shardTokens = DEFAULT_SHARD_TOKENS,
  ) {
    assertLittleEndian();
    if (!Number.isInteger(shardTokens) || shardTokens <= 0)
      throw new Error(`shard size must be a positive integer, got ${shardTokens}`);
    this.buffer = allocate(dtype, Math.min(shardTokens, 1 << 20));
  }

  async write(tokens: ArrayLike<number>): Promise<void> {
    const limit = this.dtype === 'uint16' ? 0xffff : 0xffffffff;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      if (!(Number.isInteger(token) && token >= 0 && token <= limit))
        throw new Error(`token ${token} does not fit ${this.dtype}`);
      this.buffer[this.buffered++] = token;
      if (this.buffered === this.buffer.length || this.shardFullAfterBuffer()) await this.flush();
    }
  }

  /** Writes out and commits the last shard; returns every shard written, in order. */
  async close(): Promise<ShardEntry[]> {
    await this.flush();
    if (this.current) await this.commit(this.current);
    return this.written;
  }

  /** Drops the shard being written, leaving the committed ones; for when the caller gives up. */
  async abort(): Promise<void> {
    if (!this.current) return;
    await this.current.handle.close();
    await rm(this.current.tmp, { force: true });
    this.current = null;
  }

  private shardFullAfterBuffer(): boolean {
    return (this.current?.tokens ?? 0) + this.buffered === this.shardTokens;
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const shard = this.current ?? (this.current = await this.start());
    const bytes = Buffer.from(this.buffer.buffer, this.buffer.byteOffset, this.buffered * bytesPerToken(this.dtype));
    await shard.handle.write(bytes);
    shard.hash.update(bytes);
    shard.tokens += this.buffered;
    this.buffered = 0;
    if (shard.tokens === this.shardTokens) {
      await this.commit(shard);
      this.current = null;
    }
  }

  private async start(): Promise<OpenShard> {
    const name = shardName(this.split, this.written.length);
    const tmp = path.join(this.dir, `.tmp-${name}-${process.pid}`);
    return { name, tmp, handle: await open(tmp, 'w'), hash: createHash('sha256'), tokens: 0 };
  }

  private async commit(shard: OpenShard): Promise<void> {
    await shard.handle.sync();
    await shard.handle.close();
    await rename(shard.tmp, path.join(this.dir, shard.name));
    await fsyncDir(this.dir);
    this.written.push({
      name: shard.name,
      split: this.split,
      tokens: shard.tokens,
      bytes: shard.tokens * bytesPerToken(this.dtype),
      sha256: shard.hash.digest('hex'),
    });
  }
}

export interface SplitTokens {
  tokens: TokenArray;
  length: number;
}

/** All tokens of one split of the dataset in `datasetDir`, after checking each shard against the manifest. */
export async function openSplit(datasetDir: string, split: SplitName): Promise<SplitTokens> {
  assertLittleEndian();
  const manifest = await readManifest(datasetDir);
  const shards = manifest.shards.filter((s) => s.split === split);
  const length = shards.reduce((sum, s) => sum + s.tokens, 0);
  const tokens = allocate(manifest.dtype, length);
  const width = bytesPerToken(manifest.dtype);
  let at = 0;
  for (const shard of shards) {
    const file = path.join(datasetDir, shard.name);
    if (shard.bytes !== shard.tokens * width) {
      throw new Error(`manifest: shard ${shard.name} lists ${shard.bytes} bytes for ${shard.tokens} ${manifest.dtype} tokens`);
    }
    const found = await stat(file).then(
      (s) => s.size,
      () => null,
    );
    if (found === null) throw new Error(`shard ${shard.name}: missing from ${datasetDir}`);
    if (found !== shard.bytes) {
      const why = found < shard.bytes ? 'truncated' : 'longer than the manifest says';
      throw new Error(`shard ${shard.name}: expected ${shard.bytes} bytes, found ${found} (${why})`);
    }
    const view = new Uint8Array(tokens.buffer, at * width, shard.bytes);
    const handle = await open(file, 'r');
    try {
      for (let done = 0; done < shard.bytes;) {
        const { bytesRead } = await handle.read(view, done, shard.bytes - done, done);
        if (bytesRead === 0) throw new Error(`shard ${shard.name}: expected ${shard.bytes} bytes, read ${done} (truncated)`);
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
    const digest = createHash('sha256').update(view).digest('hex');
    if (digest !== shard.sha256) {
      throw new Error(`shard ${shard.name}: sha256 ${digest} does not match the manifest's ${shard.sha256} (corrupted)`);
    }
    at += shard.tokens;
  }
  return { tokens, length };
}
