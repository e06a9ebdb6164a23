// Preload for processes whose gRPC clients should be traced too: `node --import ./dist/observability/register.js`
// (or NODE_OPTIONS). It hooks ESM imports (import-in-the-middle) so the gRPC instrumentation also patches
// the client constructors that modules import statically, then starts tracing when OTEL_* asks for it.
import { register } from 'node:module';
import { startTracing } from './tracing.js';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
await startTracing(process.env.OTEL_SERVICE_NAME ?? 'ringlet');
