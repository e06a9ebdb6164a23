#!/usr/bin/env bash
# Packs what the GPU check (scripts/gpu-check.sh) needs beside the working tree on a GPU machine that has no
# network and no Node, into one folder to carry there (default build/gpu-check/, gitignored; ≤ ~40 MB):
#   report.mjs           bench/gpu/report.ts bundled: results.json as Markdown
#   check.mjs            bench/gpu/check.ts and TensorFlow.js bundled by esbuild (plain `node` runs it, no
#                        node_modules); the .node addons stay outside it, loaded by absolute path
#   node.xz              this machine's Node 20 (dynamically linked to glibc and libstdc++ only), xz -1
#   ringlet_cuda.node    the CUDA addon (kernels/cuda/build), when it is built here
#   ringlet_cuda_emu.node, emu-cublas/
#                        the same addon built for the CPU emulator, and its emulated cuBLAS (kernels/cuda/emu), for
#                        the dry run here (scripts/gpu-check.sh --dry)
# Run: scripts/gpu-pack.sh [OUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/gpu-check}
rm -rf "$out"
mkdir -p "$out"

# tfjs's CommonJS parts call require(); an ESM bundle defines it from createRequire.
"$root/node_modules/@esbuild/linux-x64/bin/esbuild" "$root/bench/gpu/check.ts" \
  --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --banner:js="import { createRequire as __ringletRequire } from 'node:module'; const require = __ringletRequire(import.meta.url);" \
  --outfile="$out/check.mjs"
# The results as Markdown for bench/README.md (bench/gpu/report.ts), written beside them.
"$root/node_modules/@esbuild/linux-x64/bin/esbuild" "$root/bench/gpu/report.ts" \
  --bundle --platform=node --format=esm --target=node20 --log-level=warning --outfile="$out/report.mjs"

node=$(node -p process.execPath)
xz -T2 -1 -c "$node" >"$out/node.xz" # -1: 28 MB in 5 s (-6: 24 MB in 28 s)

cuda_addon=$root/kernels/cuda/build/ringlet_cuda.node
if [ -f "$cuda_addon" ]; then
  cp "$cuda_addon" "$out/"
else
  echo "gpu-pack: no $cuda_addon (npm install builds it where nvcc exists); the pack can only run --dry" >&2
fi
emulated=$root/kernels/cuda/build/ringlet_cuda_emu.node
if [ -f "$emulated" ]; then
  cp "$emulated" "$out/"
  cp -r "$root/kernels/cuda/build/emu-cublas" "$out/"
fi

bytes=$(du -sb "$out" | cut -f1)
echo "gpu-pack: $out, $((bytes / 1024 / 1024)) MiB: $(cd "$out" && ls | tr '\n' ' ')"
if [ "$bytes" -gt $((40 * 1024 * 1024)) ]; then
  echo "gpu-pack: the pack is over 40 MiB; with the working tree it must stay under the 64 MiB a GPU command carries" >&2
  exit 1
fi
