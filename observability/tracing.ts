// OpenTelemetry traces: spans of training steps (forward/backward, optimizer, all-reduce, checkpoint) and
// of gRPC calls, exported over OTLP/HTTP (JSON). Off unless an OTLP endpoint or exporter is configured
// through the standard OTEL_* variables; off, spans are the API's no-op spans and the SDK is never loaded.
import { createRequire } from 'node:module';
import { trace, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';

export const tracer = trace.getTracer('ringlet');

/** Whether the OTEL_* environment asks for traces (the SDK's own default exporter, otlp, is not asked). */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.toLowerCase();
  if (exporter === 'none') return false;
  return exporter === 'otlp' || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export interface Tracing {
  /** Exports the spans still buffered (the provider stays up for later spans in this process). */
  flush(): Promise<void>;
}

let active: Promise<Tracing | null> | null = null;

/**
 * Starts the SDK once per process when the environment asks for it, with gRPC instrumentation.
 * Endpoint, headers, timeouts and batching come from OTEL_EXPORTER_OTLP_* and OTEL_BSP_*; the service
 * name from OTEL_SERVICE_NAME (default `ringlet-<serviceName>`).
 */
export function startTracing(serviceName = 'ringlet'): Promise<Tracing | null> {
  active ??= tracingRequested() ? load(serviceName) : Promise.resolve(null);
  return active;
}

async function load(serviceName: string): Promise<Tracing> {
  const [
    { NodeTracerProvider },
    { BatchSpanProcessor },
    { OTLPTraceExporter },
    resources,
    { registerInstrumentations },
    { GrpcInstrumentation },
  ] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-grpc'),
  ]);
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': serviceName }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  provider.register();
  registerInstrumentations({ instrumentations: [new GrpcInstrumentation()] });
  // ESM imports of @grpc/grpc-js bypass the require hook; requiring it once lets the instrumentation
  // patch the Client and Server prototypes that every ESM importer shares.
  createRequire(import.meta.url)('@grpc/grpc-js');
  return { flush: () => provider.forceFlush() };
}

/** Runs fn inside a span (sync or async), recording an exception and ending the span either way. */
export function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => T): T {
  return tracer.startActiveSpan(name, { attributes }, (span) => {
    const fail = (err: unknown) => {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      span.end();
      throw err;
    };
    let result: T;
    try {
      result = fn(span);
    } catch (err) {
      return fail(err);
    }
    if (result instanceof Promise)
      return result.then((value) => {
        span.end();
        return value;
      }, fail) as T;
    span.end();
    return result;
  });
}
