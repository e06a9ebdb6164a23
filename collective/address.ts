// Service addresses as Ringlet passes them around (host:port, the form the coordinator announces ring
// members in) and whether one leads only to this machine's loopback, where a plaintext token cannot be read
// off a network.
import dns from 'node:dns/promises';
import net from 'node:net';

// A DNS name is at most 253 characters; with ":65535" and brackets an address fits in this.
const MAX_ADDRESS_LENGTH = 261;

/** `address` as host and port; null unless it is host:port or [ipv6]:port with a port in 1-65535. */
export function parseHostPort(address: string): { host: string; port: number } | null {
  if (address.length > MAX_ADDRESS_LENGTH) return null;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(address);
  if (!m) return null;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 ? { host: m[1] ?? m[2], port } : null;
}

/** 127.0.0.0/8 (also IPv4-mapped) or ::1, in any spelling. */
function isLoopbackIp(ip: string): boolean {
  const v4 = ip.toLowerCase().startsWith('::ffff:') ? ip.slice(7) : ip;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return net.isIPv6(ip) && new URL(`http://[${ip}]`).hostname === '[::1]'; // the URL parser writes IPv6 in one form
}

/**
 * True when every address `host` stands for is loopback: 127.0.0.0/8, ::1, `localhost`, or a name that
 * resolves to loopback addresses only. A name that does not resolve counts as not loopback: whatever it
 * comes to mean later is not known to be this machine.
 */
export async function isLoopbackHost(host: string): Promise<boolean> {
  if (net.isIP(host)) return isLoopbackIp(host);
  if (host.toLowerCase() === 'localhost') return true;
  try {
    const found = await dns.lookup(host, { all: true });
    return found.length > 0 && found.every((a) => isLoopbackIp(a.address));
  } catch {
    return false;
  }
}
