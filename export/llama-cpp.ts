// llama.cpp for what checks and measures the GGUF export (test/export-gguf.test.ts, `ringlet bench export`):
// node-llama-cpp's prebuilt binary for this platform (@node-llama-cpp/linux-x64, a dev dependency) on the CPU,
// one thread. It never downloads or builds llama.cpp: there is no network at run time, and its postinstall,
// which would build from source where no binary fits, is denied in package.json (allowScripts). Imported when
// called, so the command line runs where dev dependencies are not installed.
import type { Llama } from 'node-llama-cpp';

export async function prebuiltLlama(): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  return getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    progressLogs: false,
    maxThreads: 1,
    logLevel: LlamaLogLevel.error,
  });
}
