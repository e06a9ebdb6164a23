// `ringlet bench serve`: the playground's generation through a real `ringlet serve` process, as a browser
// sees it: time to the first streamed token (p50, p95 over sequential requests, model loaded), one
// stream's tokens/s, and eight concurrent streams' aggregate tokens/s; beside it, in the same run, the
// same checkpoint through `ringlet generate`, the command line's one-shot path (model load excluded).
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { median } from './median.js';

export interface ServeBenchOptions {
  runs: string;
  /** A checkpoint id under `runs` (RUN/step-N); default: the newest checkpoint of the first run. */
  checkpoint?: string;
  requests: number;
  tokens: number;
  concurrency: number;
}

const cli = path.resolve(import.meta.dirname, '../cli/ringlet.js');

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** One playground request: milliseconds to the first token event, and tokens/s from the first token to the end. */
async function stream(url: string, body: object): Promise<{ firstMs: number; tokens: number; tokensPerS: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/api/generate`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST /api/generate: ${res.status} ${await res.text()}`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let firstMs = 0;
  let first = 0;
  let tokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const count = text.split('event: token\n').length - 1;
    if (count > 0 && tokens === 0) {
      first = performance.now();
      firstMs = first - started;
    }
    tokens = count;
    if (text.includes('event: error')) throw new Error(`generation failed: ${text.slice(text.indexOf('event: error'))}`);
  }
  const seconds = (performance.now() - first) / 1000;
  return { firstMs, tokens, tokensPerS: tokens > 1 ? (tokens - 1) / seconds : 0 };
}

async function startServer(runs: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, [cli, 'serve', '--runs', runs, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve(JSON.parse(line).listening);
    });
    child.once('exit', (code) => reject(new Error(`ringlet serve exited with ${code}`)));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

export async function benchServe(o: ServeBenchOptions) {
  const server = await startServer(o.runs);
  try {
    const listed = (await (await fetch(`${server.url}/api/checkpoints`)).json()) as { checkpoints: Array<{ id: string; preset: string | null }> };
    const checkpoint = o.checkpoint ?? listed.checkpoints.at(-1)?.id;
    if (!checkpoint) throw new Error(`no checkpoint under ${o.runs}: train a run first (npm run main)`);
    const preset = listed.checkpoints.find((c) => c.id === checkpoint)?.preset ?? null;
    const request = (seed: number, maxTokens: number) => ({
      checkpoint,
      prompt: 'It was a dark and stormy night',
      max_tokens: maxTokens,
      temperature: 0.8,
      top_k: 50,
      top_p: 0.95,
      repetition_penalty: 1.1,
      seed,
    });
    await stream(server.url, request(0, 4)); // loads the model

    const firsts: number[] = [];
    for (let i = 0; i < o.requests; i++) firsts.push((await stream(server.url, request(i, 8))).firstMs);

    const single: number[] = [];
    for (let i = 0; i < 5; i++) single.push((await stream(server.url, request(100 + i, o.tokens))).tokensPerS);

    const concurrentStarted = performance.now();
    const streams = await Promise.all(Array.from({ length: o.concurrency }, (_, i) => stream(server.url, request(200 + i, o.tokens))));
    const concurrentSeconds = (performance.now() - concurrentStarted) / 1000;
    const concurrentTokens = streams.reduce((n, s) => n + s.tokens, 0);

    // The command line's path on the same checkpoint, in the same run (its tokens/s excludes loading).
    const folder = path.join(o.runs, ...checkpoint.split('/').slice(0, -1), 'checkpoints', checkpoint.split('/').at(-1)!);
    const cliRates: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, [cli, 'generate', '--checkpoint', folder, '--prompt', 'It was a dark and stormy night', '--max-tokens', String(o.tokens), '--seed', String(i), '--json'], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`ringlet generate failed: ${r.stderr}`);
      cliRates.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!).tokens_per_s);
    }

    const result = {
      checkpoint,
      preset,
      first_token_ms_p50: percentile(firsts, 0.5),
      first_token_ms_p95: percentile(firsts, 0.95),
      requests: o.requests,
      stream_tokens_per_s: median(single),
      concurrent_streams: o.concurrency,
      concurrent_tokens_per_s: concurrentTokens / concurrentSeconds,
      concurrent_streams_completed: streams.filter((s) => s.tokens > 0).length,
      cli_generate_tokens_per_s: median(cliRates),
      tokens: o.tokens,
    };
    process.stderr.write(
      `${checkpoint} (${preset ?? '?'}): first token p50 ${result.first_token_ms_p50.toFixed(1)} ms, p95 ${result.first_token_ms_p95.toFixed(1)} ms ` +
        `over ${o.requests}; one stream ${result.stream_tokens_per_s.toFixed(0)} tok/s; ${o.concurrency} streams ` +
        `${result.concurrent_tokens_per_s.toFixed(0)} tok/s together; ringlet generate ${result.cli_generate_tokens_per_s.toFixed(0)} tok/s\n`,
    );
    return result;
  } finally {
    server.stop();
  }
}
