#!/usr/bin/env bash
# A 4-rank job (dp=2 x tp=2) from the generated script, once launched with srun --mpi=pmix and
# once with Open MPI's mpirun inside the allocation. Both must form one world of 4 ranks (the
# layout check refuses anything else) and, in deterministic mode, end with the same parameters.
# Usage: test_multirank.sh TESSERA CONFIG_DIR CLUSTER_DIR
tessera=$1 configs=$2 cluster=$3
. "$(dirname "$0")/lib.sh"
settings=(--set train.steps=40 --set train.warmup_steps=2 --set train.micro_batch=8 --set parallel.tp=2
          --set parallel.deterministic=true --set eval.every=0 --set log.every=10
          --set log.progress=plain)

declare -A jobs
for launcher in srun mpirun; do
  jobs[$launcher]=$("$tessera" slurm "$configs/tiny.toml" --nodes 1 --tasks-per-node 4 \
    --time 00:05:00 --launcher "$launcher" --job-name "tiny-$launcher" "${settings[@]}" \
    --set run.dir="$work/$launcher" --submit 2>"submit-$launcher.err")
  [ -n "${jobs[$launcher]}" ] || fail "$launcher: submission failed: $(cat "submit-$launcher.err")"
done
for launcher in srun mpirun; do
  job=${jobs[$launcher]}
  [ -n "$job" ] || continue
  state=$(wait_job_end "$job" 180)
  [ "$state" = COMPLETED ] || fail "$launcher: job $job ended $state"
  log=$launcher/slurm/tiny-$launcher-$job.out
  grep -q "1 node(s), 4 ranks" "$log" || fail "$launcher: the job did not run 4 ranks"
  grep -q "^tessera-job .*running: $launcher " "$log" || fail "$launcher: not launched with $launcher"
  grep -q "layout dp=2 tp=2 pp=1 (4 ranks)" "$launcher/slurm/tiny-$launcher-$job-r0.out" ||
    fail "$launcher: the ranks did not form one dp=2 tp=2 world"
  grep -q "training finished (exit 0)" "$log" || fail "$launcher: training did not finish"
done
srun_sum=$(final_checksum srun)
mpirun_sum=$(final_checksum mpirun)
[ -n "$srun_sum" ] && [ "$srun_sum" = "$mpirun_sum" ] ||
  fail "final parameters differ: srun $srun_sum, mpirun $mpirun_sum"
finish "4 ranks (dp=2 tp=2) under srun --mpi=pmix and under mpirun; same final parameters ($srun_sum)"
