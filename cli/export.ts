// `ringlet export`: a checkpoint as a Hugging Face folder (transformers) or a GGUF file (llama.cpp,
// Ollama, LM Studio); docs/export.md.
import { Command } from 'commander';
import { exportCheckpoint } from '../export/export-checkpoint.js';
import { runCommand } from './output.js';

export const exportCommand = new Command('export')
  .description('write a checkpoint for other runtimes: a Hugging Face folder (transformers) or GGUF (llama.cpp)')
  .requiredOption('--checkpoint <path>', 'checkpoint folder or run folder (its latest)')
  .requiredOption('--format <format>', 'hf or gguf')
  .requiredOption('--out <dir>', 'output folder (written whole, with manifest.json)')
  .option('--dtype <dtype>', 'f32, f16, or q8_0 (gguf only)', 'f32')
  .option('--force', 'replace --out if it exists')
  .option('--json', 'print a JSON summary as the last line')
  .action((opts) =>
    runCommand(opts, async () => {
      const { out, manifest } = await exportCheckpoint({
        checkpoint: opts.checkpoint,
        format: opts.format,
        dtype: opts.dtype,
        out: opts.out,
        force: Boolean(opts.force),
      });
      const bytes = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
      return {
        out,
        format: manifest.format,
        dtype: manifest.dtype,
        step: manifest.source.step,
        files: Object.keys(manifest.files).length,
        bytes,
        manifest: manifest.files,
      };
    }),
  );
