// Turns the input paths of `ringlet data prepare` into the list of documents to read: a .xml file is
// a TEI document, a .txt file a plain-text document, and a folder is searched recursively for both
// (other files such as README.md or metadata.tsv are skipped and counted; hidden entries are ignored).
// A document's id is its path relative to the input folder, prefixed with the folder's name
// ("eng/ENG18400_Trollope.xml"), or a file input's own name: stable wherever the corpus lives,
// and the train/validation split is drawn from it. Ids are unique: a repeated one gets "#2", "#3"...
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export type SourceFormat = 'tei' | 'text';

export interface SourceDocument {
  id: string;
  file: string;
  format: SourceFormat;
  bytes: number;
}

export interface SourceListing {
  /** Absolute input paths, in the order given. */
  inputs: string[];
  /** Documents sorted by id (then path), each file once. */
  documents: SourceDocument[];
  bytes: number;
  skippedFiles: number;
}

function formatOf(file: string): SourceFormat | null {
  const ext = path.extname(file).toLowerCase();
  return ext === '.xml' ? 'tei' : ext === '.txt' ? 'text' : null;
}

export async function listSources(inputs: readonly string[]): Promise<SourceListing> {
  if (inputs.length === 0) throw new Error('no input paths given');
  const byFile = new Map<string, SourceDocument>();
  let skippedFiles = 0;
  const absolute = inputs.map((p) => path.resolve(p));
  for (const input of absolute) {
    const info = await stat(input).catch((err: NodeJS.ErrnoException) => {
      throw new Error(err.code === 'ENOENT' ? `input ${input} does not exist` : `cannot read input ${input}: ${err.message}`);
    });
    if (info.isDirectory()) {
      const prefix = path.basename(input);
      for await (const file of walk(input)) {
        const format = formatOf(file);
        if (format === null) {
          skippedFiles++;
          continue;
        }
        const id = [prefix, ...path.relative(input, file).split(path.sep)].join('/');
        byFile.set(file, { id, file, format, bytes: (await stat(file)).size });
      }
    } else {
      const format = formatOf(input);
      if (format === null) throw new Error(`input ${input} is neither a .xml (TEI) nor a .txt file`);
      byFile.set(input, { id: path.basename(input), file: input, format, bytes: info.size });
    }
  }
  const documents = [...byFile.values()].sort((a, b) => compare(a.id, b.id) || compare(a.file, b.file));
  // Two inputs can hold files with the same id (two folders both named "texts"): number the later ones.
  const seen = new Map<string, number>();
  for (const doc of documents) {
    const times = (seen.get(doc.id) ?? 0) + 1;
    seen.set(doc.id, times);
    if (times > 1) doc.id = `${doc.id}#${times}`;
  }
  if (documents.length === 0) throw new Error(`no .xml or .txt files found in ${absolute.join(', ')}`);
  return { inputs: absolute, documents, bytes: documents.reduce((sum, d) => sum + d.bytes, 0), skippedFiles };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Files under `dir`, recursively, following symbolic links; entries whose name starts with '.' are skipped. */
async function* walk(dir: string): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => compare(a.name, b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    const info = entry.isSymbolicLink() ? await stat(full) : entry;
    if (info.isDirectory()) yield* walk(full);
    else if (info.isFile()) yield full;
  }
}
