// Mutations of protobuf bytes, aware of the wire format where that helps: a valid message is cut into its
// top-level fields (tag, then a varint, a fixed 32/64-bit value or a length-delimited run), and one to three
// of these edits are applied: bit flips, a cut, a field repeated or dropped, a length that claims far more
// than follows, a varint replaced by an extreme or overlong one, an unknown or invalid field appended,
// random bytes spliced in. Every choice comes from the caller's seeded Rng, so a message can be made again.
import type { Rng } from '../../lm/rng.js';
import { pick, randomBytes } from './draw.js';

interface Field {
  start: number; // first byte of the tag
  end: number; // one past the value
  wireType: number;
  valueStart: number; // first byte after the tag
}

/** The top-level fields of `bytes`, or null where they do not parse (a mutant of a mutant). */
function fields(bytes: Uint8Array): Field[] | null {
  const out: Field[] = [];
  for (let pos = 0; pos < bytes.length;) {
    const tag = readVarint(bytes, pos);
    if (!tag) return null;
    const wireType = tag.value % 8;
    let end: number;
    if (wireType === 0) end = readVarint(bytes, tag.next)?.next ?? -1;
    else if (wireType === 1) end = tag.next + 8;
    else if (wireType === 5) end = tag.next + 4;
    else if (wireType === 2) {
      const length = readVarint(bytes, tag.next);
      end = length ? length.next + length.value : -1;
    } else return null;
    if (end < 0 || end > bytes.length) return null;
    out.push({ start: pos, end, wireType, valueStart: tag.next });
    pos = end;
  }
  return out;
}

function readVarint(bytes: Uint8Array, pos: number): { value: number; next: number } | null {
  let value = 0;
  for (let i = 0; i < 10 && pos + i < bytes.length; i++) {
    value += (bytes[pos + i] & 0x7f) * 2 ** (7 * i);
    if (!(bytes[pos + i] & 0x80)) return { value, next: pos + i + 1 };
  }
  return null;
}

/** `value` (a non-negative integer, up to 2^64-1 as a bigint) as a varint. */
export function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? byte | 0x80 : byte);
  } while (v > 0n);
  return Buffer.from(out);
}

// Varint values at the edges: zero, 32-bit and JavaScript's safe-integer limits, 2^64-1, and an 11-byte
// varint (longer than any valid one).
const EXTREME_VARINTS: Buffer[] = [
  varint(0),
  varint(1),
  varint(0x7fffffff),
  varint(0xffffffff),
  varint(2 ** 32),
  varint(2 ** 53 - 1),
  varint(2 ** 53),
  varint(2n ** 63n),
  varint(2n ** 64n - 1n),
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
];

// Lengths that promise more than any message holds.
const HUGE_LENGTHS = [2 ** 31 - 1, 2 ** 32 - 1, 2 ** 35, 0x7ffffff0];

type Mutation = (rng: Rng, bytes: Buffer) => Buffer;

const splice = (bytes: Buffer, from: number, to: number, insert: Buffer) =>
  Buffer.concat([bytes.subarray(0, from), insert, bytes.subarray(to)]);

const MUTATIONS: Record<string, Mutation> = {
  'flip bits': (rng, b) => {
    const out = Buffer.from(b);
    for (let i = 1 + rng.int(8); i > 0 && out.length > 0; i--) out[rng.int(out.length)] ^= 1 << rng.int(8);
    return out;
  },
  truncate: (rng, b) => b.subarray(0, rng.int(Math.max(1, b.length))),
  'repeat a field': (rng, b) => {
    const f = fields(b);
    if (!f?.length) return b;
    const one = pick(rng, f);
    const copies = pick(rng, [1, 2, 10, 1000]);
    return splice(b, one.end, one.end, Buffer.concat(Array(copies).fill(b.subarray(one.start, one.end))));
  },
  'drop a field': (rng, b) => {
    const f = fields(b);
    if (!f?.length) return b;
    const one = pick(rng, f);
    return splice(b, one.start, one.end, Buffer.alloc(0));
  },
  'huge length': (rng, b) => {
    const delimited = fields(b)?.filter((f) => f.wireType === 2) ?? [];
    if (delimited.length === 0)
      return Buffer.concat([b, Buffer.from([0x0a]), varint(pick(rng, HUGE_LENGTHS)), randomBytes(rng, 8)]);
    const one = pick(rng, delimited);
    const length = readVarint(b, one.valueStart)!;
    return splice(b, one.valueStart, length.next, varint(pick(rng, HUGE_LENGTHS)));
  },
  'extreme varint': (rng, b) => {
    const varints = fields(b)?.filter((f) => f.wireType === 0) ?? [];
    if (varints.length === 0) return b;
    const one = pick(rng, varints);
    return splice(b, one.valueStart, one.end, pick(rng, EXTREME_VARINTS));
  },
  'unknown field': (rng, b) => {
    // Any field number (0 and past 2^29-1 are invalid) with any wire type (3 and 4 are groups, 6 and 7 invalid).
    const tag = varint(pick(rng, [0, 1, 15, 99, 2 ** 29 - 1, 2 ** 29, rng.int(2 ** 29)]) * 8 + rng.int(8));
    return Buffer.concat([b, tag, pick(rng, EXTREME_VARINTS), randomBytes(rng, rng.int(16))]);
  },
  'random bytes in': (rng, b) => {
    const at = rng.int(b.length + 1);
    return splice(b, at, at + rng.int(4), randomBytes(rng, 1 + rng.int(32)));
  },
};

/** `valid` with one to three mutations; returns the bytes and the names of what was done. */
export function mutate(rng: Rng, valid: Uint8Array): { bytes: Buffer; how: string } {
  let bytes: Buffer = Buffer.from(valid);
  const names: string[] = [];
  for (let i = 1 + rng.int(3); i > 0; i--) {
    const name = pick(rng, Object.keys(MUTATIONS));
    bytes = MUTATIONS[name](rng, bytes);
    names.push(name);
  }
  return { bytes, how: names.join(', ') };
}
