// `ringlet export`'s one job: a verified checkpoint out as a Hugging Face folder or a GGUF file, written
// atomically with a manifest. The request is checked before anything is read (format, dtype, an output
// that exists), the checkpoint's files against their sha256 before anything is written.
import path from 'node:path';
import { z } from 'zod';
import { MODEL_FILE, readCheckpoint, resolveCheckpointDir } from '../lm/checkpoint.js';
import { ggufFiles } from './gguf.js';
import { hfFiles } from './hf.js';
import { refuseExisting, writeExportDir, type ExportManifest } from './write-dir.js';

export const ExportRequestSchema = z
  .strictObject({
    checkpoint: z.string().min(1),
    format: z.enum(['hf', 'gguf'], { error: (i) => `unknown format "${String(i.input)}": use hf or gguf` }),
    dtype: z
      .enum(['f32', 'f16', 'q8_0'], { error: (i) => `unknown dtype "${String(i.input)}": use f32, f16 or q8_0` })
      .default('f32'),
    out: z.string().min(1),
    force: z.boolean().default(false),
  })
  .refine((r) => !(r.format === 'hf' && r.dtype === 'q8_0'), {
    message: 'q8_0 is a GGUF block format; a Hugging Face export is f32 or f16',
    path: ['dtype'],
  });
export type ExportRequest = z.input<typeof ExportRequestSchema>;

export async function exportCheckpoint(input: ExportRequest): Promise<{ out: string; manifest: ExportManifest }> {
  const parsed = ExportRequestSchema.safeParse(input);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => i.message).join('; '));
  const r = parsed.data;
  refuseExisting(r.out, r.force);
  let checkpoint;
  try {
    checkpoint = await readCheckpoint(await resolveCheckpointDir(r.checkpoint));
  } catch (err) {
    throw new Error(`cannot export ${r.checkpoint}: ${(err as Error).message}`);
  }
  const files = r.format === 'hf' ? await hfFiles(checkpoint, r.dtype as 'f32' | 'f16') : await ggufFiles(checkpoint, r.dtype);
  const manifest = await writeExportDir(
    r.out,
    files,
    {
      format: r.format,
      dtype: r.dtype,
      source: {
        checkpoint: path.resolve(checkpoint.path),
        step: checkpoint.meta.step,
        model_sha256: checkpoint.meta.files[MODEL_FILE].sha256,
      },
    },
    { force: r.force },
  );
  return { out: path.resolve(r.out), manifest };
}
