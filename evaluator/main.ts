// Starts the evaluator service: the result store, the HTTP API, and the subscription to checkpoint-published
// events on the given bus (any Bus: the in-process one, or NATS). Returns a handle to stop it gracefully.
import type { Bus } from '../controlplane/bus.js';
import type { ServiceConfig } from './config.js';
import { EvaluatorGrpc } from './grpc.js';
import { EvaluatorHttp } from './http.js';
import type { OpenAiApi } from './openai-api.js';
import { EvaluatorService } from './service.js';
import { ResultStore } from './store.js';

export interface RunningEvaluator {
  url: string;
  /** host:port of the gRPC face, when grpc_port is configured. */
  grpcAddress: string | null;
  service: EvaluatorService;
  /** The OpenAI routes, with their counts of running completions, tokens generated and cancellations. */
  openAi: OpenAiApi;
  /** Stops taking requests and events, lets running evaluations finish (up to drain_seconds), closes the store. */
  stop(): Promise<{ drained: boolean }>;
}

export async function startEvaluator(config: ServiceConfig, bus: Bus, log: (line: string) => void): Promise<RunningEvaluator> {
  const store = new ResultStore(config.db);
  const service = new EvaluatorService(config, store, log);
  const http = new EvaluatorHttp(service);
  const grpc = config.grpc_port === undefined ? null : new EvaluatorGrpc(service);
  let address;
  let grpcPort: number | null = null;
  try {
    address = await http.listen();
    if (grpc) grpcPort = await grpc.listen(config.host, config.grpc_port!);
    await service.subscribe(bus);
  } catch (err) {
    http.server.close();
    await grpc?.stop();
    store.close();
    throw err;
  }
  return {
    url: `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`,
    grpcAddress: grpcPort === null ? null : `${config.host}:${grpcPort}`,
    service,
    openAi: http.openAi,
    stop: async () => {
      const [drained] = await Promise.all([http.shutdown(), grpc?.stop()]);
      service.close();
      store.close();
      return { drained };
    },
  };
}
