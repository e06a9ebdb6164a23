// The evaluator's gRPC face (proto/ringlet/evaluator/v1/evaluator.proto): a thin layer over the same
// EvaluatorService and zod schemas as the HTTP API. Writes need metadata `authorization: Bearer <token>`;
// messages are capped at max_body_bytes, as HTTP bodies are. Plaintext unless grpc_tls_cert/key are set;
// with grpc_tls_client_ca too, clients need a certificate that CA signed.
import { timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { z } from 'zod';
import { boundedDetails, serverCredentials } from '../collective/auth.js';
import { GRPC_SERVER_KEEPALIVE, shutdownGrpcServer } from '../collective/session-keepalive.js';
import type { ServiceConfig } from './config.js';
import { EvaluatorServiceService, type EvaluatorServiceServer } from '../proto/gen/ringlet/evaluator/v1/evaluator.js';
import { presentEvaluation } from './http.js';
import { CompareSchema, EvaluatorService, GateSchema, parseRequest, ServiceError, SubmitSchema } from './service.js';

const GRPC_STATUS: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  409: grpc.status.FAILED_PRECONDITION,
  413: grpc.status.RESOURCE_EXHAUSTED,
  422: grpc.status.FAILED_PRECONDITION,
  503: grpc.status.UNAVAILABLE,
};

// Messages quote what the caller sent (a checkpoint reference, an id): bounded and well-formed, or the
// status cannot reach the caller, or grpc-js throws while sending it (collective/auth.ts).
function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof ServiceError)
    return { code: GRPC_STATUS[err.status] ?? grpc.status.INTERNAL, details: boundedDetails(err.message) };
  return { code: grpc.status.INTERNAL, details: boundedDetails(`internal error: ${(err as Error).message}`) };
}

function parseJson<S extends z.ZodType>(schema: S, text: string): z.output<S> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new ServiceError(400, `request_json is not JSON: ${(err as Error).message}`);
  }
  return parseRequest(schema, body);
}

/** Plaintext, TLS, or mutual TLS, as configured. */
function channelSecurity(config: ServiceConfig): grpc.ServerCredentials {
  const { grpc_tls_cert: cert, grpc_tls_key: key, grpc_tls_client_ca: ca } = config;
  if (cert === undefined || key === undefined) return grpc.ServerCredentials.createInsecure();
  if (ca !== undefined) return serverCredentials({ ca, cert, key }); // mutual TLS, as the coordinator's
  return grpc.ServerCredentials.createSsl(
    null,
    [{ cert_chain: fs.readFileSync(cert), private_key: fs.readFileSync(key) }],
    false,
  );
}

export class EvaluatorGrpc {
  private readonly server: grpc.Server;

  constructor(private readonly service: EvaluatorService) {
    const limit = service.config.max_body_bytes;
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': limit, ...GRPC_SERVER_KEEPALIVE });
    const expected = Buffer.from(`Bearer ${service.config.token}`);
    const authorize = (metadata: grpc.Metadata) => {
      const given = Buffer.from(String(metadata.get('authorization')[0] ?? ''));
      if (!(given.length === expected.length && timingSafeEqual(given, expected)))
        throw new ServiceError(401, 'this call needs metadata authorization: Bearer <token>');
    };
    const unary =
      <Req, Res>(write: boolean, body: (req: Req) => Promise<Res>) =>
      (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
        Promise.resolve()
          .then(() => {
            if (write) authorize(call.metadata);
            return body(call.request);
          })
          .then(
            (res) => cb(null, res),
            (err) => cb(toGrpcError(err)),
          );
      };
    const impl: EvaluatorServiceServer = {
      submit: unary(true, async (req) => {
        const { wait, ...request } = parseJson(
          SubmitSchema,
          JSON.stringify({ checkpoint: req.checkpoint, suites: req.suites, limit: req.limit || undefined, wait: req.wait }),
        );
        const submitted = await service.submit(request, 'grpc');
        const record = wait || submitted.state === 'stored' ? await submitted.finished : service.store.get(submitted.id)!;
        return {
          id: submitted.id,
          state: submitted.state,
          status: record.status,
          evaluationJson: record.status === 'running' ? '' : JSON.stringify(presentEvaluation(record)),
        };
      }),
      getEvaluation: unary(false, async (req) => {
        const record = service.store.get(req.id);
        if (!record) throw new ServiceError(404, `no evaluation ${req.id}`);
        return { evaluationJson: JSON.stringify(presentEvaluation(record)) };
      }),
      compare: unary(true, async (req) => ({
        comparisonJson: JSON.stringify(await service.compare(parseJson(CompareSchema, req.requestJson))),
      })),
      gate: unary(true, async (req) => {
        const answer = await service.gate(parseJson(GateSchema, req.requestJson));
        return {
          pass: answer.pass,
          exitCode: answer.exit_code,
          checksJson: JSON.stringify(answer.checks),
          evaluationId: answer.evaluation_id,
        };
      }),
    };
    this.server.addService(EvaluatorServiceService, impl);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, channelSecurity(this.service.config), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
  }

  /**
   * Lets calls in flight finish (a Submit waiting for its evaluation) for drain_seconds, as the HTTP API
   * does, then drops every session (one a peer broke never ends).
   */
  stop(): Promise<void> {
    return shutdownGrpcServer(this.server, this.service.config.drain_seconds * 1000);
  }
}
