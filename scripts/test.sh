#!/usr/bin/env bash
# Installs the dependencies, builds tessera and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --preset release -j "$(nproc)" "$@"
