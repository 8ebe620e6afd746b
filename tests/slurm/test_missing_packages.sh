#!/usr/bin/env bash
# Without Slurm's programs the cluster start must fail, saying what to install; it must not
# leave anything running. Runs start-cluster.sh with a PATH that has the basic tools only.
# Usage: test_missing_packages.sh START_CLUSTER_SCRIPT
set -u
start=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
for tool in bash id realpath dirname date cat hostname sed awk mkdir rm; do
  ln -s "$(command -v "$tool")" "$work/bin/$tool"
done
PATH=$work/bin "$start" "$work/cluster" >"$work/out" 2>&1
status=$?
if [ "$status" = 0 ]; then
  echo "FAIL: start-cluster.sh succeeded without Slurm on PATH"
  exit 1
fi
if ! grep -q "not found; install Slurm and munge with scripts/install-deps.sh" "$work/out"; then
  echo "FAIL: the message does not say what to install:"
  cat "$work/out"
  exit 1
fi
if [ -e "$work/cluster/run/slurmctld.pid" ]; then
  echo "FAIL: a controller was started"
  exit 1
fi
echo "ok: without Slurm, exit $status and: $(cat "$work/out")"
