// The image's HEALTHCHECK: GET RINGLET_HEALTH_URL (default the coordinator's http://127.0.0.1:7071/healthz; a
// worker serves it on 7081, the evaluator on 8470, `ringlet serve` on 8080) and exit 0 on a 2xx answer within 4 s.
const url = process.env.RINGLET_HEALTH_URL || 'http://127.0.0.1:7071/healthz';
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  process.exit(0);
} catch (err) {
  console.error(`unhealthy: ${url}: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
