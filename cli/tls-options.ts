// The mutual-TLS flags that the coordinator and the worker share (read by collective/auth.ts tlsFromFlags).
import type { Command } from 'commander';

export function addTlsOptions(command: Command): Command {
  return command
    .option('--tls-ca <pem>', 'mTLS: CA certificate')
    .option('--tls-cert <pem>', 'mTLS: this service certificate')
    .option('--tls-key <pem>', 'mTLS: its key');
}
