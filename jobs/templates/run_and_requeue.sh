# --- Run, forward stop signals, requeue (jobs/templates/run_and_requeue.sh) ------------------
# shellcheck shell=bash disable=SC2154  # train, launch, ...: set above by tessera slurm
# Expects: train (the tessera command, an array), launch (the launcher, an array), log_dir,
# requeue_on_stop (1: requeue this job when training stops early; 0: exit 0 so that the next
# job of a chain resumes), max_requeues.
#
# tessera train exits 0 when the run is finished, 75 when it stopped early after writing a good
# checkpoint (it was sent USR1 or TERM, or the job's time limit was near), 3 when its loss
# diverged (train.max_bad_steps), 2 on bad input and 1 on a failure. Started again with the same configuration it resumes from checkpoint.dir.
restart=${SLURM_RESTART_COUNT:-0}
job_tag=${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}
job_tag=${job_tag:-$SLURM_JOB_ID}
mkdir -p "$log_dir"
rank_output=$log_dir/$SLURM_JOB_NAME-$job_tag-r$restart.out
rank_errors=$log_dir/$SLURM_JOB_NAME-$job_tag-r$restart.err
note() { echo "tessera-job $(date '+%F %T'): $*"; }
note "job $job_tag (restart $restart) on $SLURM_JOB_NUM_NODES node(s), $SLURM_NTASKS ranks"
note "running: ${launch[*]} ${train[*]}"
note "rank output: $rank_output, errors: $rank_errors"

# Slurm sends USR1 to this shell (--signal=B:USR1@...; or `scancel --signal=USR1 --batch`) and
# TERM on preemption or scancel. Both become USR1 for the launcher: srun and mpirun forward USR1
# to every rank, which then checkpoints at the next step boundary and exits 75. (TERM is not
# forwarded as TERM: srun and mpirun answer it by killing the ranks at once.)
# (`scontrol requeue` itself ends this shell's job with TERM; by then the ranks have ended.)
launcher_pid=
phase=starting  # starting, running, ended
stop_requested=0
ask_ranks_to_stop() {
  case $phase in
    starting) stop_requested=1 ;;
    running)
      stop_requested=1  # the ranks end with it, started or not: no launch again
      note "got SIG$1: asking the ranks to checkpoint and stop (USR1 to ${launch[0]}, pid $launcher_pid)"
      kill -USR1 "$launcher_pid" 2>/dev/null
      ;;
    ended) note "got SIG$1 after the ranks ended" ;;
  esac
}
trap 'ask_ranks_to_stop USR1' USR1
trap 'ask_ranks_to_stop TERM' TERM

# A launch whose ranks die before every one of them got through MPI_Init has done nothing, and
# another launch usually starts: Open MPI 4.1's TCP transport under Slurm's PMIx crashes in
# MPI_Init about once in 60 starts on tessera's test cluster (doc/slurm.md). Each rank marks
# its start in started_dir (TESSERA_STARTED_DIR) as soon as MPI_Init returns; a failed launch
# with fewer marks than ranks is launched again, up to max_launches times in all.
max_launches=3
started_dir=$log_dir/started-$job_tag-r$restart
export TESSERA_STARTED_DIR=$started_dir
ranks=${SLURM_NTASKS:-1}
ranks_started() { find "$started_dir" -maxdepth 1 -name 'rank-*' 2>/dev/null | wc -l; }

: >"$rank_output"
: >"$rank_errors"  # every launch appends, a second one after the first
launches=0
while :; do
  launches=$((launches + 1))
  rm -rf "$started_dir"
  mkdir -p "$started_dir"
  # In the background: bash runs a trap only between commands, and `wait` is one it leaves for it.
  "${launch[@]}" "${train[@]}" </dev/null >>"$rank_output" 2>>"$rank_errors" &
  launcher_pid=$!
  phase=running
  [ "$stop_requested" = 1 ] && ask_ranks_to_stop USR1
  while :; do
    wait "$launcher_pid"
    status=$?
    # A trap interrupts `wait` with a status above 128 while the launcher runs on: wait again.
    # (A pid reused in between makes `wait` answer 127, which ends the loop.)
    [ "$status" -gt 128 ] && kill -0 "$launcher_pid" 2>/dev/null && continue
    break
  done
  phase=starting
  started=$(ranks_started)
  if [ "$status" = 0 ] || [ "$started" -ge "$ranks" ] || [ "$stop_requested" = 1 ]; then
    break
  fi
  if [ "$launches" -ge "$max_launches" ]; then
    note "the ranks died before all of them had started MPI, in each of $launches launches: see $rank_errors"
    break
  fi
  note "the ranks died (exit $status) before all of them had started MPI ($started of" \
    "$ranks did): nothing ran, launching again ($((launches + 1)) of $max_launches)"
done
rm -rf "$started_dir"
phase=ended

case $status in
  0)
    note "training finished (exit 0)"
    ;;
  75)
    if [ "$requeue_on_stop" != 1 ]; then
      note "training stopped early after a checkpoint (exit 75); the next job of the chain resumes it"
      exit 0
    fi
    if [ "$restart" -ge "$max_requeues" ]; then
      note "training stopped early after a checkpoint (exit 75), but this job was already" \
        "restarted $restart times (max_requeues = $max_requeues): not requeued; submit it again to go on"
      exit 75
    fi
    note "training stopped early after a checkpoint (exit 75): scontrol requeue $SLURM_JOB_ID"
    if scontrol requeue "$SLURM_JOB_ID"; then
      note "requeued: job $job_tag waits in the queue again (Slurm holds a requeued job for a" \
        "while, about 2 minutes) and resumes from the checkpoint as restart $((restart + 1))"
      exit 0
    fi
    note "scontrol requeue failed: submit this script again to resume from the checkpoint"
    exit 75
    ;;
  3)
    note "training diverged (exit 3): its loss stayed non-finite for train.max_bad_steps steps;" \
      "not requeued; resume from the last checkpoint with a lower train.lr or with train.grad_clip"
    ;;
  4)
    note "training hung (exit 4): no rank progressed for train.hang_timeout_s; $rank_errors names" \
      "the stuck ranks. Not requeued (a hang that a bug causes would come back): submit again," \
      "with --exclude for a bad node, to resume from the last checkpoint"
    ;;
  2)
    note "tessera refused its input (exit 2): see $rank_errors"
    ;;
  *)
    note "training failed (exit $status): see $rank_errors"
    ;;
esac
exit "$status"
