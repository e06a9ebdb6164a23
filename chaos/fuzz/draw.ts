// Seeded draws for the fuzzer. Message i of a service is made from its own generator, seeded from
// (seed, service, i), so one message can be made again alone: `ringlet fuzz --seed S --service X --index I`.
import { createHash } from 'node:crypto';
import { Rng } from '../../lm/rng.js';

/** The generator of message `index` of `service` in the run seeded with `seed`. */
export function messageRng(seed: number, service: string, index: number): Rng {
  const digest = createHash('sha256').update(`${seed}/${service}/${index}`).digest();
  return new Rng([digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12) | 1]);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

export function chance(rng: Rng, p: number): boolean {
  return rng.next() < p;
}

export function randomBytes(rng: Rng, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

/** Printable junk of length n, now and then with a non-ASCII, control or NUL character. */
export function randomText(rng: Rng, n: number): string {
  const odd = ['\u0000', '\n', '\r', '"', '\\', '%', 'é', '\u{1F600}', '\uD800', '/', '..'];
  let out = '';
  for (let i = 0; i < n; i++) out += chance(rng, 0.1) ? pick(rng, odd) : String.fromCharCode(0x20 + rng.int(95));
  return out;
}

/** Numbers a double field should never be trusted with. */
export const EXTREME_DOUBLES = [NaN, Infinity, -Infinity, -0, -1, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, 5e-324];

/** Integers at the edges of what uint32, uint64 and JavaScript's numbers hold. */
export const EXTREME_INTEGERS = [0, 1, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 53 - 1];
