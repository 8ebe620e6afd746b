#!/usr/bin/env bash
# Jobs of several nodes on the test cluster of network namespaces (scripts/slurm/test-cluster.sh):
# generated `tessera slurm` jobs of 2 nodes x 2 tasks (tp=2 x pp=2) and of 4 nodes x 2 tasks
# (dp=2 x tp=2 x pp=2) train over MPI across the node boundaries, each tensor-parallel pair on
# one node, and end, in deterministic mode, with exactly the parameters of a one-node run of the
# same layout (mpiexec on this host).
# Usage: test_multinode_layout.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
settings=(--set train.steps=20 --set train.warmup_steps=2 --set train.micro_batch=8
          --set model.n_layers=4 --set parallel.tp=2 --set parallel.pp=2
          --set parallel.deterministic=true --set eval.every=0 --set log.every=10
          --set log.progress=plain)

declare -A jobs references
for nodes in 2 4; do
  ranks=$((nodes * 2))
  mpiexec -n "$ranks" --oversubscribe "$tessera" train "$configs/tiny.toml" "${settings[@]}" \
    --set run.dir="$work/one-node-$nodes" >"one-node-$nodes.log" 2>&1 &
  references[$nodes]=$!
  jobs[$nodes]=$("$tessera" slurm "$configs/tiny.toml" --nodes "$nodes" --tasks-per-node 2 \
    --time 00:05:00 --job-name "nodes$nodes" "${settings[@]}" --set run.dir="$work/nodes$nodes" \
    --submit 2>"submit-$nodes.err")
  [ -n "${jobs[$nodes]}" ] || fail "$nodes nodes: submission failed: $(cat "submit-$nodes.err")"
done
for nodes in 2 4; do
  job=${jobs[$nodes]}
  wait "${references[$nodes]}" ||
    fail "$nodes nodes: the one-node reference failed: $(tail -3 "one-node-$nodes.log")"
  [ -n "$job" ] || continue
  state=$(wait_job_end "$job" 240)
  [ "$state" = COMPLETED ] || fail "$nodes nodes: job $job ended $state"
  # The ranks' hosts, from the run manifest: every node used, tp pairs (2k, 2k+1) on one node.
  placement=$(python3 -c '
import json, sys
hosts = json.load(open(sys.argv[1]))["hosts"]
pairs_together = all(hosts[r] == hosts[r + 1] for r in range(0, len(hosts), 2))
print(len(set(hosts)), "together" if pairs_together else "split", " ".join(hosts))
' "nodes$nodes/manifest.json" 2>&1)
  case $placement in
    "$nodes together "*) ;;
    *) fail "$nodes nodes: the ranks ran on: $placement (expected $nodes nodes, tp pairs together)" ;;
  esac
  expected=$(final_checksum "one-node-$nodes")
  got=$(final_checksum "nodes$nodes")
  [ -n "$expected" ] && [ "$got" = "$expected" ] ||
    fail "$nodes nodes: final parameters $got, one node $expected"
done
finish "2 nodes (tp=2 pp=2) and 4 nodes (dp=2 tp=2 pp=2): tp pairs on one node; final parameters bitwise those of one node"
