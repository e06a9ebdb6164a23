// An export's folder, written whole or not at all: every file goes into a temporary folder beside the
// target (same file system), each fsynced, with manifest.json listing every file's size and sha256; then
// one rename publishes it. An existing target is refused unless `force`, and then replaced by renames (the
// old folder moved aside, the new one in, the old one deleted), so a reader never sees half of either.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, writeFileSynced } from '../lm/atomic-write.js';

export interface ExportFile {
  name: string; // a plain file name, no folders
  bytes: Uint8Array;
}

export interface ExportManifest {
  format: string;
  dtype: string;
  source: { checkpoint: string; step: number; model_sha256: string };
  created_at: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

export const MANIFEST_FILE = 'manifest.json';

/** Thrown for an output folder that exists when `force` was not given. */
export class OutputExistsError extends Error {}

/** Refuses an existing output folder unless `force`: checked before the export's work, and again before the rename. */
export function refuseExisting(out: string, force: boolean): void {
  if (existsSync(out) && !force)
    throw new OutputExistsError(`${out} already exists: choose another --out, or give --force to replace it`);
}

export async function writeExportDir(
  out: string,
  files: ExportFile[],
  about: Omit<ExportManifest, 'files' | 'created_at'>,
  options: { force: boolean },
): Promise<ExportManifest> {
  const target = path.resolve(out);
  refuseExisting(out, options.force);
  for (const f of files)
    if (f.name !== path.basename(f.name) || f.name === MANIFEST_FILE || f.name.startsWith('.'))
      throw new Error(`export file name "${f.name}" is not a plain file name`);
  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true });
  const tmp = path.join(parent, `.tmp-export-${path.basename(target)}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    const manifest: ExportManifest = { ...about, created_at: new Date().toISOString(), files: {} };
    for (const f of files) {
      await writeFileSynced(path.join(tmp, f.name), f.bytes);
      manifest.files[f.name] = { bytes: f.bytes.length, sha256: createHash('sha256').update(f.bytes).digest('hex') };
    }
    await writeFileSynced(path.join(tmp, MANIFEST_FILE), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    await fsyncDir(tmp);
    if (existsSync(target)) {
      const old = path.join(parent, `.tmp-replaced-${path.basename(target)}-${randomBytes(4).toString('hex')}`);
      await rename(target, old);
      await rename(tmp, target);
      await rm(old, { recursive: true, force: true });
    } else await rename(tmp, target);
    await fsyncDir(parent);
    return manifest;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
