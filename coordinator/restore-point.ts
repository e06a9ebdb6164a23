// A job restores only from a whole checkpoint: every file's sha256 as its meta.json says, the optimizer
// moments included. A newer one that rotted on disk (or was half deleted) is reported and passed over for
// the one before it, so workers are never sent to restore something that fails them one re-formation
// after another.
import fs from 'node:fs';
import path from 'node:path';
import { META_FILE, listCheckpoints, readCheckpoint, type CheckpointMeta } from '../lm/checkpoint.js';
import type { JsonLog } from './log.js';

/**
 * Why `checkpoint` is not whole, or null. A checkpoint this process cannot see at all is not judged: the
 * coordinator may not share the workers' storage, and they will say if they cannot read it.
 */
export async function isIntact(checkpoint: string): Promise<string | null> {
  if (!fs.existsSync(path.join(checkpoint, META_FILE))) return null;
  try {
    await readCheckpoint(checkpoint, { withOptimizer: true });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The newest intact checkpoint of `runDir` with a step in [atLeast, below), or null. */
export async function newestIntactCheckpoint(
  runDir: string,
  o: { below?: number; atLeast?: number; log?: JsonLog } = {},
): Promise<{ path: string; meta: CheckpointMeta } | null> {
  const candidates = (await listCheckpoints(runDir)).filter((c) => c.step < (o.below ?? Infinity) && c.step >= (o.atLeast ?? 0));
  for (const entry of candidates.reverse()) {
    try {
      const { meta } = await readCheckpoint(entry.path, { withOptimizer: true });
      return { path: entry.path, meta };
    } catch (err) {
      o.log?.('error', 'checkpoint unreadable; passing over it for an older one', {
        checkpoint: entry.path,
        error: (err as Error).message,
      });
    }
  }
  return null;
}
