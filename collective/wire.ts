// The bytes of a ring chunk (CollectiveService.Exchange's request) as the ring sends them. The generated
// encoder (ts-proto over @bufbuild/protobuf's BinaryWriter) copies a chunk's float bytes three times:
// into the writer's chunk list, into the buffer `finish()` concatenates, and once more in the generated
// `Buffer.from(...)`. `encodeExchangeRequest` measures the message, allocates one Buffer and writes the
// fields into it; `exchangeFrame` stops before the data, so that the floats go to the socket from the
// gradient buffer itself (collective/exchange-stream.ts). The bytes are the generated encoder's, byte for
// byte (same field order, proto3 defaults omitted; checked in test/collective.test.ts), so the receiver
// (and any other implementation of collective.proto) decodes them with the generated code, which keeps
// `data` as a view of the message.
import { ExchangeRequest } from '../proto/gen/ringlet/collective/v1/collective.js';

/** Where gRPC posts CollectiveService.Exchange's stream (`/package.Service/Method`). */
export const EXCHANGE_PATH = '/ringlet.collective.v1.CollectiveService/Exchange';

/** Bytes of `v` as a protobuf varint; `v` is a non-negative integer below 2^53. */
function varintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

const UINT_FIELDS = [
  // [field number, key] in field order, after job_id (1); all non-negative varints
  ['ringEpoch', 16],
  ['fromRank', 24],
  ['step', 32],
  ['bucket', 40],
  ['bucketElements', 48],
  ['phase', 56],
  ['round', 64],
  ['segment', 72],
  ['offset', 80],
  ['encoding', 88],
] as const;

/** `message` as protobuf, in one Buffer. Values the fast path does not cover go to the generated encoder. */
export function encodeExchangeRequest(message: ExchangeRequest): Buffer {
  let size = 0;
  for (const [field] of UINT_FIELDS) {
    const v = message[field];
    if (!Number.isSafeInteger(v) || v < 0 || (field !== 'step' && v > 0xffffffff))
      return Buffer.from(ExchangeRequest.encode(message).finish());
    if (v !== 0) size += 1 + varintLength(v);
  }
  const jobIdBytes = Buffer.byteLength(message.jobId, 'utf8');
  if (jobIdBytes > 0) size += 1 + varintLength(jobIdBytes) + jobIdBytes;
  const dataBytes = message.data.length;
  if (dataBytes > 0) size += 1 + varintLength(dataBytes) + dataBytes;

  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  if (jobIdBytes > 0) {
    buf[pos++] = 10;
    pos = writeVarint(buf, pos, jobIdBytes);
    pos += buf.write(message.jobId, pos, 'utf8');
  }
  for (const [field, key] of UINT_FIELDS) {
    const v = message[field];
    if (v === 0) continue;
    buf[pos++] = key;
    pos = writeVarint(buf, pos, v);
  }
  if (dataBytes > 0) {
    buf[pos++] = 98;
    pos = writeVarint(buf, pos, dataBytes);
    buf.set(message.data, pos);
  }
  return buf;
}

/**
 * `message` as one gRPC length-prefixed message, split where its `data` begins: `head` holds the 5-byte
 * gRPC prefix (uncompressed, big-endian length) and every protobuf byte before the data's bytes, which
 * follow as `data` itself, so a sender writes them from where they lie.
 */
export function exchangeFrame(message: ExchangeRequest): { head: Buffer; data: Uint8Array } {
  const fields = encodeExchangeRequest({ ...message, data: new Uint8Array(0) });
  const dataBytes = message.data.length;
  const key = dataBytes > 0 ? 1 + varintLength(dataBytes) : 0;
  const head = Buffer.allocUnsafe(5 + fields.length + key);
  head[0] = 0;
  head.writeUInt32BE(fields.length + key + dataBytes, 1);
  fields.copy(head, 5);
  if (dataBytes > 0) {
    head[5 + fields.length] = 98;
    writeVarint(head, 6 + fields.length, dataBytes);
  }
  return { head, data: message.data };
}
