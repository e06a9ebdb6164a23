#!/usr/bin/env bash
# The GPU check (issue 13 item 7), for a GPU machine with no network and no Node: one command measures every
# CUDA kernel against its float64 reference, the whole model against the golden fixture, Ringlet's training
# throughput (micro, mini, small at 32k and 64k tokens per step, TF32 and bf16: tokens/s, TFLOP/s, MFU against
# the datasheet and a measured GEMM, peak memory, GPU idle share, CPU fallbacks), then the PyTorch peer on the
# same cases (eager, torch.compile reduce-overhead and max-autotune-no-cudagraphs), within 8 minutes. It writes
# OUT_DIR/results.json (bench/gpu/check.ts, one entry per part), OUT_DIR/report.md (the same as Markdown for
# bench/README.md, the goals' verdicts first: bench/gpu/report.ts) and OUT_DIR/gpu-check.log.
#
# The pack (scripts/gpu-pack.sh: the bundle, a compressed Node, the CUDA addon) is build/gpu-check/ beside the
# working tree, or RINGLET_GPU_PACK. Python is `python3` on PATH (RINGLET_PEER_PYTHON overrides).
#
# --dry runs everything on this machine's CPU instead: the same addon built for the CUDA emulator
# (kernels/cuda/emu) with its emulated cuBLAS, small shapes, the nano preset, and the peer on the CPU; CI runs it
# (test/gpu-check.test.ts).
#
# Time: the Ringlet parts (typically ~2 minutes) must end by --ringlet-budget-s (default 240 s), the peers by
# --budget-s (default 460 s) from the start; a case that does not fit is listed as skipped in results.json.
# torch.compile's max-autotune takes minutes per model, so the peers run largest batch first, eager before
# each compile mode, larger presets first: the compile runs of micro and of the 32k batches are what is cut.
#
# Run: scripts/gpu-check.sh OUT_DIR [--dry] [--budget-s N] [--ringlet-budget-s N]
set -uo pipefail
if [ $# -lt 1 ] || [[ $1 == -* ]]; then
  echo "usage: scripts/gpu-check.sh OUT_DIR [--dry] [--budget-s N] [--ringlet-budget-s N]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
shift
dry=0
budget=460
ringlet_budget=240
while [ $# -gt 0 ]; do
  case $1 in
  --dry) dry=1 ;;
  --budget-s) budget=$2 && shift ;;
  --ringlet-budget-s) ringlet_budget=$2 && shift ;;
  *) echo "gpu-check: unknown option $1" >&2 && exit 2 ;;
  esac
  shift
done
start=$(date +%s)
pack=${RINGLET_GPU_PACK:-$root/build/gpu-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)
results=$out/results.json
rm -f "$results" "$out/gpu-check.log"
exec > >(tee -a "$out/gpu-check.log") 2>&1

say() { echo "== gpu-check $(date -u +%H:%M:%S) $*"; }
say "$(hostname), pack $pack, results $results, budget ${budget} s"
if [ ! -f "$pack/check.mjs" ]; then
  say "no $pack/check.mjs: run scripts/gpu-pack.sh first"
  exit 2
fi

# Node: the packed binary (a GPU machine has none), else this machine's.
node=$(command -v node || true)
if [ -f "$pack/node.xz" ]; then
  node=$(mktemp -d)/node
  xz -dc "$pack/node.xz" >"$node" && chmod +x "$node"
fi
say "node $("$node" --version)"
export RINGLET_ROOT=$root # where the bundle finds bench/peers/torch_train.py
export RINGLET_PEER_PYTHON=${RINGLET_PEER_PYTHON:-$(command -v python3)}
say "python $RINGLET_PEER_PYTHON: $("$RINGLET_PEER_PYTHON" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)' 2>&1 | tail -1)"

if [ $dry = 1 ]; then
  export RINGLET_CUDA_ADDON=$pack/ringlet_cuda_emu.node RINGLET_CUBLAS_DIR=$pack/emu-cublas
  args=(--kernel-sizes small --presets nano --tokens 256,512 --precisions tf32 --gemm-size 256
    --warmup 1 --steps 2 --profiled 1 --peer-device cpu --peer-modes eager)
else
  export RINGLET_CUDA_ADDON=$pack/ringlet_cuda.node
  say "nvidia-smi -q"
  nvidia-smi -q || say "nvidia-smi failed (status $?)"
  args=()
fi

check() { "$node" "$pack/check.mjs" --results "$results" --fixture "$root/test/fixtures/golden-step.json" "${args[@]}" "$@"; }
# A process per part: a kernel that faults leaves its CUDA context unusable, and must not take the later parts
# with it; the peers start after Node has given its device memory back. The kernel checks wait after each
# launch (RINGLET_CUDA_SYNC=1), so an asynchronous fault is charged to the kernel that caused it.
RINGLET_CUDA_SYNC=1 check --parts kernels --deadline $((start + ringlet_budget))
say "the kernel checks exited with status $?"
for part in golden gemm throughput; do
  check --parts $part --deadline $((start + ringlet_budget))
  say "$part exited with status $?"
done
check --parts peers --deadline $((start + budget))
say "the peers exited with status $?"

# The figures as Markdown for bench/README.md, the goals' verdicts first.
"$node" "$pack/report.mjs" "$results" >"$out/report.md" && say "report: $out/report.md"

# The verdict: each part's status; 0 only when every part is ok.
"$node" -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const parts = Object.entries(r.parts);
  for (const [name, p] of parts) console.log(`${name.padEnd(11)} ${p.status.padEnd(7)} ${p.seconds.toFixed(1)} s${p.error ? "  " + p.error.split("\n")[0] : ""}`);
  process.exit(parts.length === 5 && parts.every(([, p]) => p.status === "ok") ? 0 : 1);
' "$results"
status=$?
say "done in $(($(date +%s) - start)) s: $results"
exit $status
