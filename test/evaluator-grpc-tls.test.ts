// The evaluator's gRPC face over TLS and mutual TLS, with real grpc-js clients on loopback: a client that
// trusts the CA is answered, a plaintext client (and, under mutual TLS, one without a certificate) is refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { InProcessBus } from '../controlplane/bus.js';
import { loadServiceConfig } from '../evaluator/config.js';
import { startEvaluator } from '../evaluator/main.js';
import { EvaluatorServiceClient } from '../proto/gen/ringlet/evaluator/v1/evaluator.js';
import { makeCertificates } from './tls-fixture.js';

const tls = makeCertificates();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlet-evtls-'));
const base = { RINGLET_EVALUATOR_TOKEN: 'test-token-0123456789' };

async function evaluatorWith(flags: Record<string, unknown>) {
  const config = loadServiceConfig(undefined, base, {
    port: 0,
    grpc_port: 0,
    db: path.join(fs.mkdtempSync(path.join(work, 'db-')), 'results.sqlite'),
    checkpoint_roots: work,
    ...flags,
  });
  return startEvaluator(config, new InProcessBus(), () => {});
}

/** The status GetEvaluation of an unknown id ends with: NOT_FOUND means the call reached the service. */
async function getEvaluationStatus(address: string, credentials: grpc.ChannelCredentials): Promise<grpc.ServiceError> {
  const client = new EvaluatorServiceClient(address, credentials);
  try {
    return await new Promise((resolve, reject) =>
      client.getEvaluation({ id: 'no-such-evaluation' }, (err) => (err ? resolve(err) : reject(new Error('an answer')))),
    );
  } finally {
    client.close();
  }
}

const ca = fs.readFileSync(tls.ca);
const withCertificate = grpc.credentials.createSsl(ca, fs.readFileSync(tls.key), fs.readFileSync(tls.cert));

test('with a certificate and key, gRPC speaks TLS: a client that trusts the CA is answered, a plaintext one is refused', async () => {
  const evaluator = await evaluatorWith({ grpc_tls_cert: tls.cert, grpc_tls_key: tls.key });
  try {
    const answered = await getEvaluationStatus(evaluator.grpcAddress!, grpc.credentials.createSsl(ca));
    assert.equal(answered.code, grpc.status.NOT_FOUND);
    assert.match(answered.details, /no evaluation no-such-evaluation/);
    const plaintext = await getEvaluationStatus(evaluator.grpcAddress!, grpc.credentials.createInsecure());
    assert.equal(plaintext.code, grpc.status.UNAVAILABLE);
  } finally {
    await evaluator.stop();
  }
});

test('with a client CA too, gRPC wants client certificates: one signed by the CA is answered, none is refused', async () => {
  const evaluator = await evaluatorWith({ grpc_tls_cert: tls.cert, grpc_tls_key: tls.key, grpc_tls_client_ca: tls.ca });
  try {
    assert.equal((await getEvaluationStatus(evaluator.grpcAddress!, withCertificate)).code, grpc.status.NOT_FOUND);
    const anonymous = await getEvaluationStatus(evaluator.grpcAddress!, grpc.credentials.createSsl(ca));
    assert.equal(anonymous.code, grpc.status.UNAVAILABLE);
  } finally {
    await evaluator.stop();
  }
});

test('gRPC TLS settings that cannot work are named', () => {
  const load = (flags: Record<string, unknown>) => () => loadServiceConfig(undefined, base, { grpc_port: 0, ...flags });
  assert.throws(load({ grpc_tls_cert: tls.cert }), /grpc_tls_key: grpc_tls_cert and grpc_tls_key go together/);
  assert.throws(load({ grpc_tls_client_ca: tls.ca }), /grpc_tls_client_ca: client certificates need TLS/);
  assert.throws(
    load({ grpc_tls_cert: '/no/such.pem', grpc_tls_key: tls.key }),
    /grpc_tls_cert: cannot read the file \/no\/such.pem/,
  );
  assert.throws(
    () =>
      loadServiceConfig(
        undefined,
        { ...base, RINGLET_EVALUATOR_GRPC_TLS_CERT: tls.cert, RINGLET_EVALUATOR_GRPC_TLS_KEY: tls.key },
        {},
      ),
    /grpc_tls_cert: TLS is for the gRPC face, which is off: give grpc_port too/,
  );
});
