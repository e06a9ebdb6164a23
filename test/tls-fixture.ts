// A throwaway certificate authority for the mutual-TLS tests (openssl, as scripts/setup.sh installs it).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TlsFiles } from '../collective/auth.js';

/** A CA and one certificate it signed for `ips` (server and client use), made with openssl. */
export function makeCertificates(ips: string[] = ['127.0.0.1']): TlsFiles {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-tls-'));
  const f = (name: string) => path.join(dir, name);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=ringlet-test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  ]);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${ips[0]}`, '-keyout', f('node.key'), '-out', f('node.csr')]);
  fs.writeFileSync(
    f('ext.cnf'),
    `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  run([
    'x509',
    '-req',
    '-in',
    f('node.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    f('ext.cnf'),
    '-out',
    f('node.pem'),
  ]);
  return { ca: f('ca.pem'), cert: f('node.pem'), key: f('node.key') };
}
