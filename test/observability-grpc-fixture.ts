// A gRPC server and client in one process with tracing on, for test/observability-tracing.test.ts.
// @grpc/grpc-js is imported statically before tracing starts, the way coordinator/ and worker/ import it.
import * as grpc from '@grpc/grpc-js';
import { startTracing } from '../observability/tracing.js';

const tracing = await startTracing('ringlet-grpc-fixture');
const identity = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const service: grpc.ServiceDefinition = {
  Say: {
    path: '/ringlet.test.Echo/Say',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity.serialize,
    requestDeserialize: identity.deserialize,
    responseSerialize: identity.serialize,
    responseDeserialize: identity.deserialize,
  },
};
const server = new grpc.Server();
server.addService(service, {
  Say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => done(null, call.request),
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
const Client = grpc.makeGenericClientConstructor(service, 'Echo');
const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
  Say(req: Buffer, cb: (err: Error | null, res: Buffer) => void): void;
  close(): void;
};
const reply = await new Promise<Buffer>((resolve, reject) =>
  client.Say(Buffer.from('ping'), (err, res) => (err ? reject(err) : resolve(res))),
);
process.stdout.write(`reply ${reply.toString()}\n`);
client.close();
server.forceShutdown();
await tracing?.flush();
