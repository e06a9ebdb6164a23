#!/usr/bin/env bash
# Installs what Ringlet needs on a fresh Debian machine with Node 20: npm packages from the lockfile
# (the `prepare` script compiles the TypeScript into dist/), and PyTorch and transformers for the benchmarks' peers and
# the Hugging Face export's test.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages, one list, each installed only when missing:
# - nats-server (with -js) carries the control plane's events on a cluster; the tests start a real one;
# - openssl: the distributed mutual-TLS test makes its certificates with it;
# - build-essential and python3: better-sqlite3 (the evaluator's result store) compiles its native addon;
# - prometheus (with promtool): the observability tests scrape a training job and check the alert rules;
# - libopenblas-dev: sgemm for the native kernels (kernels/native, built at npm install);
# - iproute2: the chaos suite's link-cut scenario puts each worker on a network namespace of its own;
# - chromium: the web UI's browser tests drive it through playwright-core.
need=()
command -v nats-server >/dev/null || need+=(nats-server)
command -v openssl >/dev/null || need+=(openssl)
{ command -v g++ && command -v make && command -v python3; } >/dev/null || need+=(build-essential python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
{ command -v prometheus && command -v promtool; } >/dev/null || need+=(prometheus)
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
command -v ip >/dev/null || need+=(iproute2)
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]})); then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
# --omit=optional: node-llama-cpp (the GGUF export's test runtime) lists a prebuilt llama.cpp for every platform and
# GPU as optional (~730 MB); package.json names the one this machine uses (@node-llama-cpp/linux-x64, ~83 MB in all),
# and beside it the other native binaries the build needs (esbuild, rolldown, lightningcss, buf) that were optional.
# The optional tfjs-node packages download libtensorflow at install and are left out too (kernels/backend.ts).
npm ci --omit=optional --no-audit --no-fund
# Python in a venv under the repository, from the machine's wheel store: torch for the benchmarks' PyTorch peers
# (bench/peers/) and their test, transformers for the Hugging Face export's test (export/check_hf.py), each at the
# version its requirements file pins. pip leaves what is installed at its pin alone (about a second, no index
# needed) and installs what is missing or pinned anew.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --retries 0 --timeout 5 -r bench/peers/requirements.txt -r export/requirements.txt
