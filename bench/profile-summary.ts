// Where a thread's time went, from a V8 CPU profile (`node --cpu-prof`, one .cpuprofile per thread): self
// time grouped into the layers a ring all-reduce or a training step crosses, largest first.
// Run: node --import tsx bench/profile-summary.ts FILE.cpuprofile [...]
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

// First match wins: a frame's function name and script decide its layer.
const LAYERS: Array<[string, (fn: string, url: string) => boolean]> = [
  ['idle (waiting for data: the peer, the slower rank)', (fn) => fn === '(idle)'],
  ['garbage collection', (fn) => fn === '(garbage collector)'],
  ['native, no JS frame (nghttp2, sockets, kernels)', (fn) => fn === '(program)'],
  ['buffer copies and allocation (node:buffer)', (fn, url) => url === 'node:buffer' || url === 'node:internal/buffer'],
  ['grpc-js (framing, calls, filters)', (_, url) => url.includes('@grpc/grpc-js')],
  ['protobuf decoding (generated code)', (_, url) => url.includes('proto/gen/') || url.includes('@bufbuild')],
  ['node:http2 and streams', (_, url) => /^node:internal\/(http2|streams|stream_base)/.test(url) || url === 'node:http2'],
  ['ring: sums, copies, serializer, validation (collective/)', (_, url) => url.includes('/collective/')],
  ['TensorFlow.js and the model (compute)', (_, url) => /@tensorflow|\/lm\/|\/kernels\/|\/train\//.test(url)],
  [
    'event loop, promises, timers, messaging',
    (_, url) => /^node:internal\/(process|timers|event_target|per_context|worker)/.test(url) || url === 'node:events',
  ],
  ['other', () => true],
];

export function summarize(profile: Profile): Array<{ layer: string; ms: number; share: number }> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const { functionName, url } = byId.get(id)!.callFrame;
    const layer = LAYERS.find(([, match]) => match(functionName, url))![0];
    ms.set(layer, (ms.get(layer) ?? 0) + dt);
    total += dt;
  });
  return [...ms].map(([layer, t]) => ({ layer, ms: Math.round(t), share: t / total })).sort((a, b) => b.ms - a.ms);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('profile-summary.ts'))
  for (const file of process.argv.slice(2)) {
    const rows = summarize(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile);
    const total = rows.reduce((s, r) => s + r.ms, 0);
    console.log(`${file}: ${total} ms sampled`);
    for (const r of rows) console.log(`  ${(100 * r.share).toFixed(1).padStart(5)}%  ${String(r.ms).padStart(6)} ms  ${r.layer}`);
  }
