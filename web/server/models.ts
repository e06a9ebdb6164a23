// Checkpoints loaded for generation, by id (`RUN/step-N`), kept for the next request: at most `capacity`
// of them; past that, the least recently used one that nothing is generating with is freed. Loading the
// same id twice at once loads it once.
import { CheckpointRefError, loadScoringModel, type ScoringModel } from '../../evaluator/model.js';
import { decoderFor } from '../../lm/decode.js';
import { fusedKernelsActive } from '../../lm/ops.js';
import type { RunsIndex } from './runs.js';

/** Thrown for an id that names no finished checkpoint under --runs (the API answers 404). */
export class UnknownModelError extends Error {
  readonly status = 404;
}

interface Entry {
  model: Promise<ScoringModel>;
  users: number;
  lastUsed: number;
}

export class LoadedModels {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly runs: RunsIndex,
    private readonly capacity = 4,
    /** Whether models handed out by load() may still be in use (then nothing is freed yet). */
    private readonly loanedOut: () => boolean = () => false,
  ) {}

  /** The loaded checkpoint `id`, for a caller that does not say when it is done (the OpenAI endpoints). */
  async load(id: string): Promise<ScoringModel> {
    const entry = await this.entry(id);
    entry.lastUsed = Date.now();
    const model = await entry.model;
    this.evict();
    return model;
  }

  /** Runs `work` with the checkpoint `id` loaded; the model stays loaded while any work uses it. */
  async use<T>(id: string, work: (model: ScoringModel) => Promise<T>): Promise<T> {
    const entry = await this.entry(id);
    entry.users++;
    try {
      return await work(await entry.model);
    } finally {
      entry.users--;
      entry.lastUsed = Date.now();
      this.evict();
    }
  }

  get loaded(): number {
    return this.entries.size;
  }

  /** Generations running now, over every model. */
  get busy(): number {
    return [...this.entries.values()].reduce((n, e) => n + e.users, 0);
  }

  close(): void {
    for (const e of this.entries.values())
      void e.model.then(
        (m) => m.dispose(),
        () => undefined,
      );
    this.entries.clear();
  }

  private async entry(id: string): Promise<Entry> {
    const cached = this.entries.get(id);
    if (cached) return cached;
    const folder = await this.runs.checkpointFolder(id);
    if (!folder) throw new UnknownModelError(`unknown checkpoint "${id}": GET /api/checkpoints lists them`);
    if (this.entries.has(id)) return this.entries.get(id)!; // loaded by a request that raced this one
    const model = loadScoringModel(folder)
      .then((m) => {
        if (fusedKernelsActive()) decoderFor(m.params, m.config); // the decoder's weight copy now, not in the first request
        return m;
      })
      .catch((err: Error) => {
        this.entries.delete(id);
        throw err instanceof CheckpointRefError ? new UnknownModelError(err.message) : err;
      });
    const entry: Entry = { model, users: 0, lastUsed: Date.now() };
    this.entries.set(id, entry);
    await model;
    return entry;
  }

  private evict(): void {
    if (this.loanedOut()) return; // over capacity for a while; the next eviction catches up
    while (this.entries.size > this.capacity) {
      const idle = [...this.entries].filter(([, e]) => e.users === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      if (!idle) return;
      this.entries.delete(idle[0]);
      void idle[1].model.then(
        (m) => m.dispose(),
        () => undefined,
      );
    }
  }
}
