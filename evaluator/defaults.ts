// Default locations of the evaluation data: `../shared/data` beside the checkout (see README), found from
// this file so that the source tree and the built dist/ tree give the same answer.
import { existsSync } from 'node:fs';
import path from 'node:path';

function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

export const SHARED_DATA = path.resolve(packageRoot(), '../shared/data');
export const DEFAULT_BLIMP_DIR = path.join(SHARED_DATA, 'blimp');
export const DEFAULT_DALAJ_FILE = path.join(SHARED_DATA, 'dalaj/dalaj-ged-superlim_dev.jsonl');
