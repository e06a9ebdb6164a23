// Raw HTTP/2 frames on a bare TCP socket, below any gRPC: the client preface, then whatever frames the
// fuzzer made (any type, flags, stream id, a length field that lies), then a PING. The server's answer is
// its first GOAWAY or RST_STREAM (the error code it names), or the PING's acknowledgement: every frame
// before it was taken or ignored, and the connection is still good. A RST_STREAM with NO_ERROR is how a
// server that has answered tells the client to stop sending: no error.
import type { Answer } from './oracle.js';
import { socketExchange } from './socket-exchange.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const PING_PAYLOAD = Buffer.from('ringlet!');
const TYPE = { RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7 } as const;

/** One frame: 9-byte header (24-bit length, type, flags, 31-bit stream id) and payload; `length` may lie. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer, length = payload.length): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(length & 0xffffff, 0, 3);
  header[3] = type & 0xff;
  header[4] = flags & 0xff;
  header.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([header, payload]);
}

/** Sends the preface, an empty SETTINGS, `frames`, then a PING, and reads the server's verdict. */
export function h2Exchange(address: { host: string; port: number }, frames: Buffer, deadlineMs: number): Promise<Answer> {
  const send = Buffer.concat([
    PREFACE,
    h2Frame(TYPE.SETTINGS, 0, 0, Buffer.alloc(0)),
    frames,
    h2Frame(TYPE.PING, 0, 0, PING_PAYLOAD),
  ]);
  return socketExchange(address, { send, end: false, deadlineMs, read: verdict });
}

/** The server's frames so far: its GOAWAY, or the PING's acknowledgement (after the first error RST_STREAM, if any). */
function verdict(received: Buffer, closed: boolean): Answer | null {
  let reset: Answer | null = null;
  for (let pos = 0; pos + 9 <= received.length;) {
    const length = received.readUIntBE(pos, 3);
    if (pos + 9 + length > received.length) break;
    const [type, flags] = [received[pos + 3], received[pos + 4]];
    const payload = received.subarray(pos + 9, pos + 9 + length);
    pos += 9 + length;
    if (type === TYPE.GOAWAY && length >= 8) return { kind: 'h2', frame: 'GOAWAY', code: payload.readUInt32BE(4) };
    if (type === TYPE.RST_STREAM && length >= 4 && payload.readUInt32BE(0) !== 0)
      reset ??= { kind: 'h2', frame: 'RST_STREAM', code: payload.readUInt32BE(0) };
    if (type === TYPE.PING && flags & 1 && payload.equals(PING_PAYLOAD)) return reset ?? { kind: 'h2', frame: 'PING', code: 0 };
  }
  return closed ? reset : null;
}
