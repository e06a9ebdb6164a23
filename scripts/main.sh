#!/usr/bin/env bash
# The main job on the embedded default: prepare the English and Swedish ELTeC corpora, train one small
# model per language side by side (one single-threaded worker per core), print samples, keep checkpoints,
# then serve the web UI over the two runs until Ctrl-C (RINGLET_SERVE=0 skips it, for scripts).
# RINGLET_MINUTES sets the training time per model (default 4). Prepared data is reused; runs start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${RINGLET_MINUTES:-4}"
data=../shared/data/eltec
ringlet() { node dist/cli/ringlet.js "$@"; }

for lang in eng swe; do
  if [ -f "runs/data/$lang/manifest.json" ]; then
    echo "== runs/data/$lang is already prepared (delete it to prepare again)"
  else
    echo "== preparing $data/$lang"
    ringlet data prepare --input "$data/$lang" --out "runs/data/$lang" --vocab 4096
  fi
done

rm -rf runs/eng-micro runs/swe-micro
echo "== training preset micro for $minutes min per language: English here, Swedish in runs/swe-micro/train.log"
ringlet train --data runs/data/swe --out runs/swe-micro --preset micro --time-limit $((minutes * 60)) \
  > runs/swe-micro.summary.txt 2> runs/swe-micro.train.log &
swedish=$!
ringlet train --data runs/data/eng --out runs/eng-micro --preset micro --time-limit $((minutes * 60))
wait "$swedish" || { cat runs/swe-micro.train.log; exit 1; }
tail -n 3 runs/swe-micro.train.log

echo "== samples"
ringlet generate --checkpoint runs/eng-micro --prompt "It was a dark and stormy night" --max-tokens 120 --seed 1
ringlet generate --checkpoint runs/swe-micro --prompt "Det var en mörk och stormig natt" --max-tokens 120 --seed 1
echo "== checkpoints: runs/eng-micro/checkpoints, runs/swe-micro/checkpoints"
if [ "${RINGLET_SERVE:-1}" != 0 ]; then
  port="${RINGLET_PORT:-8080}"
  echo "== the web UI: http://127.0.0.1:$port/ (runs, compare, playground); Ctrl-C stops it"
  ringlet serve --runs runs --port "$port"
fi
