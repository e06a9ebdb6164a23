// A worker_thread that runs a given module, from the compiled JavaScript or from the TypeScript sources:
// a worker thread does not inherit the tsx loader, so from sources it registers tsx first. The ring's
// thread and the benchmarks' rank threads start this way.
import { Worker } from 'node:worker_threads';

/** Starts a thread running the module at `moduleUrl` (its `import.meta.url`) with `workerData`. */
export function moduleThread(moduleUrl: string, workerData: object): Worker {
  const url = new URL(moduleUrl);
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then((m) => m.register()).then(() => import(${JSON.stringify(url.href)}))`;
  return new Worker(boot, { eval: true, workerData });
}
