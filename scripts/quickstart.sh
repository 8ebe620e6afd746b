#!/usr/bin/env bash
# Installs the dependencies, builds tessera and runs the main job: a short training run of the
# `tiny` GPT-2 model on the built-in synthetic source, whose loss falls towards a known floor.
# Everything lands in runs/tiny (config.toml, metrics.jsonl, loss.png).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
rm -rf runs/tiny  # a finished run would otherwise resume from its last checkpoint
build/release/tessera train configs/tiny.toml "$@"
/usr/bin/python3 scripts/plot_metrics.py runs/tiny && echo "loss curve: runs/tiny/loss.png"
