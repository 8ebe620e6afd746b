#!/usr/bin/env bash
# Generated scripts for several resource requests, judged by the real controller with
# `sbatch --test-only` (nothing runs). The test cluster has one node with 8 CPUs and 4 GPUs
# (gres), partition debug: requests that fit must be accepted, the others refused by Slurm.
# Usage: test_test_only.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"

check() {  # EXPECT(accept|refuse) NAME tessera-slurm-arguments...
  local expect=$1 name=$2
  shift 2
  if ! "$tessera" slurm "$configs/tiny.toml" --set run.dir="$work/$name" "$@" \
    --output "$name.sh" 2>"$name.gen"; then
    fail "$name: tessera slurm refused it: $(cat "$name.gen")"
    return
  fi
  sbatch --test-only "$name.sh" >"$name.out" 2>&1
  local status=$?
  if [ "$expect" = accept ]; then
    [ "$status" = 0 ] && grep -q "to start at" "$name.out" ||
      fail "$name: sbatch --test-only refused it: $(cat "$name.out")"
  else
    [ "$status" != 0 ] || fail "$name: sbatch --test-only accepted an impossible request"
  fi
}

check accept one-rank --nodes 1 --tasks-per-node 1 --time 00:10:00
check accept tp4 --nodes 1 --tasks-per-node 4 --time 1-00:00:00 --set parallel.tp=4 \
  --partition debug --account project1 --qos normal
check accept dp8 --nodes 1 --tasks-per-node 8 --time 02:00:00 --set train.micro_batch=2
check accept mpirun --nodes 1 --tasks-per-node 2 --time 00:30:00 --launcher mpirun --set train.micro_batch=8
check accept gpus --nodes 1 --tasks-per-node 4 --gpus-per-node 4 --time 00:10:00 --set parallel.tp=4
check accept gres --nodes 1 --tasks-per-node 4 --gpus-per-node 4 --time 00:10:00 --set parallel.tp=4 \
  --profile juwels-booster-example --partition debug --cpus-per-task 2
check accept sweep --nodes 1 --tasks-per-node 2 --time 00:10:00 --set train.micro_batch=8 \
  --layout tp=2 --layout tp=1 --layout pp=2
check refuse two-nodes --nodes 2 --tasks-per-node 1 --time 00:10:00 --set train.micro_batch=8
check refuse too-many-cpus --nodes 1 --tasks-per-node 4 --cpus-per-task 4 --time 00:10:00 --set parallel.tp=4
check refuse no-partition --nodes 1 --tasks-per-node 1 --time 00:10:00 --partition nosuch

grep -q '^#SBATCH --gres=gpu:4$' gres.sh || fail "the juwels example profile did not ask for --gres=gpu:4"
grep -q '^#SBATCH --array=0-2$' sweep.sh || fail "the sweep is not an array of 3"
finish "7 requests accepted and 3 refused by sbatch --test-only as expected"
