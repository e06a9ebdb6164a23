#!/usr/bin/env bash
# Installs what Ringlet needs on a fresh Debian machine with Node 20: npm packages from the lockfile
# (the `prepare` script compiles the TypeScript into dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
