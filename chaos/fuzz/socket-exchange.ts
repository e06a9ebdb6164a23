// One exchange on a bare TCP connection, as the raw HTTP/1.1 and HTTP/2 clients make it: connect, write
// the bytes as they are, and read until `read` finds the answer in what has come, the connection closes
// (`read` has a last look; nothing there is `closed`), or the deadline passes (a hang).
import net from 'node:net';
import type { Answer } from './oracle.js';

export interface SocketExchange {
  send: Buffer;
  end: boolean; // end our side after sending (the server then knows no more is coming)
  deadlineMs: number;
  /** The answer in `received` so far, or null to wait for more; `closed`: nothing more will come. */
  read: (received: Buffer, closed: boolean) => Answer | null;
}

export function socketExchange(address: { host: string; port: number }, o: SocketExchange): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = net.connect(address.port, address.host);
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (answer: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => settle({ kind: 'hang' }), o.deadlineMs);
    socket.on('error', () => {}); // a reset shows as 'close' below
    socket.on('connect', () => (o.end ? socket.end(o.send) : socket.write(o.send)));
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      const answer = o.read(received, false);
      if (answer) settle(answer);
    });
    socket.on('close', () => settle(o.read(received, true) ?? { kind: 'closed' }));
  });
}
