// Structured logs of the distributed services: one JSON object per line on stderr, with the time, level,
// component and message first, so `jq` and log shippers read them as they are.
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface JsonLog {
  (level: Level, msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLog(component: string, base: Record<string, unknown> = {}): JsonLog {
  return (level, msg, fields = {}) => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...base, ...fields })}\n`);
  };
}
