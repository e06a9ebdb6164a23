// Service addresses as Ringlet passes them around: host:port, the form the coordinator announces ring
// members in.

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
