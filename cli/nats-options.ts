// The NATS flags that `ringlet coordinator` and `ringlet evaluator` share (read by controlplane/nats-config.ts
// loadNatsConfig). The password and the token have no flag: RINGLET_NATS_PASSWORD / RINGLET_NATS_TOKEN, or the file.
import type { Command } from 'commander';

export function addNatsOptions(command: Command): Command {
  return command
    .option('--nats <servers>', 'control-plane bus on NATS JetStream (comma-separated URLs; default: in-process bus)')
    .option('--nats-config <file>', 'JSON file of NATS settings: servers, user, password, token, tls_ca, tls_cert, tls_key')
    .option('--nats-user <name>', 'NATS user (its password: RINGLET_NATS_PASSWORD)')
    .option('--nats-tls-ca <pem>', "NATS over TLS: CA of the server's certificate")
    .option('--nats-tls-cert <pem>', 'NATS over TLS: client certificate, for a server that verifies clients')
    .option('--nats-tls-key <pem>', 'NATS over TLS: its key');
}
