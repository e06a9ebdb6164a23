// Paths a coordinator names, held to the folders the worker was given. A path is resolved the way the
// file system will follow it (symlinks included), so a link inside a root cannot lead out of it.
import fs from 'node:fs/promises';
import path from 'node:path';

/** `p` made absolute with every symlink followed; for a path not yet made, its nearest existing parent's. */
async function realPath(p: string): Promise<string> {
  const missing: string[] = [];
  for (let at = path.resolve(p); ; at = path.dirname(at)) {
    try {
      return path.join(await fs.realpath(at), ...missing.reverse());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(at) === at) throw err;
      missing.push(path.basename(at));
    }
  }
}

function isInside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel.split(path.sep)[0] !== '..' && !path.isAbsolute(rel));
}

/**
 * Throws unless `p` resolves inside one of `roots` (or is one). `what` names the path for the error (e.g.
 * "train.data"), `flag` the worker's setting that would let it in.
 */
export async function confinePath(p: string, roots: string[], what: string, flag: string): Promise<void> {
  const real = await realPath(p);
  const realRoots = await Promise.all(roots.map((r) => realPath(r)));
  if (realRoots.some((root) => isInside(real, root))) return;
  const shown = real === path.resolve(p) ? '' : ` (resolves to ${real})`;
  throw new Error(`${what} ${p}${shown} is outside this worker's folders ${roots.join(', ')}; give the worker ${flag}`);
}

/** Throws unless checkpoint folder `checkpoint` lies in run folder `out`'s checkpoints folder (lm/checkpoint.ts). */
export async function checkRestorePath(checkpoint: string, out: string): Promise<void> {
  const root = path.join(out, 'checkpoints');
  const [real, realRoot] = await Promise.all([realPath(checkpoint), realPath(root)]);
  if (real !== realRoot && isInside(real, realRoot)) return;
  throw new Error(`checkpoint ${checkpoint} to restore is not in the run's checkpoints folder ${root}`);
}
