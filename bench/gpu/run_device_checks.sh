#!/usr/bin/env bash
# tessera's checks on a GPU machine, as one command: run from the repository root of a copy of the
# working tree that carries .gpu-carry/ (made by bench/gpu/prepare_carry.sh). In order:
#   mpi_runtime   the packed Open MPI: tessera --version as a singleton and under mpirun -np 2
#   conformance   test_cuda_backend: every CUDA op against the CPU backend
#   attention_timing  one attention layer at gpt2-124m's shape: fp32, bf16 through cuDNN, bf16
#                 with tessera's own kernel (test_cuda_backend's DISABLED_Timing case)
#   cuda_mpi      test_cuda_mpi: NCCL communicator and the check macro under MPI
#   training      tests/train/test_backend_training.py cuda: the trainer on cuda against cpu
#   calibration   tessera calibrate: the card's hardware profile (GEMMs, attention, copies)
#   system        tests/train/test_backend_system.py cuda: checkpoints, resume (sync, async),
#                 checkpoints carried between cuda and cpu, SIGUSR1 mid-step and mid-checkpoint
#   benchmark     bench/gpu/bench_gpu.py: tessera and PyTorch, tokens/s and MFU
# STEPS (comma-separated names, default all of them in this order) picks which run. Each step has
# its own timeout, and the benchmark's budget is what is left of TOTAL_S (at most 240 s), so the
# whole script ends within about TOTAL_S seconds (default 700); a failing step does not stop the
# ones after it. Sets TESSERA_REQUIRE_GPU=1: no usable GPU is a failure there, not a skip. Writes
# into $OUT: device_checks.log (all output, a summary of the steps at its end),
# cuda_conformance.xml, cuda_mpi.xml, backend_system.json, hardware_profile.json, bench_gpu.json
# and bench_gpu.md. Exits with the number of failed steps.
set -uo pipefail

OUT=${OUT:-$PWD/device-out}
TOTAL_S=${TOTAL_S:-700}
STEPS=${STEPS:-mpi_runtime,conformance,attention_timing,cuda_mpi,training,calibration,system,benchmark}
# Which models and precisions the benchmark trains (a short lease can afford gpt2-124m alone).
BENCH_MODELS=${BENCH_MODELS:-gpt2-124m,openlm-1b}
BENCH_PRECISIONS=${BENCH_PRECISIONS:-bf16,fp32}
# Runs of each side per row, and the most seconds the benchmark may take (about 4 minutes on an
# H100 by default; what is left of TOTAL_S when that is less).
BENCH_REPEATS=${BENCH_REPEATS:-3}
BENCH_MAX_S=${BENCH_MAX_S:-240}
mkdir -p "$OUT"
log="$OUT/device_checks.log"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TESSERA_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
summary=()
failed=0

# run_step NAME TIMEOUT_S COMMAND...: runs it with its output in the log, records its status;
# a step STEPS does not name is left out.
run_step() {
  local name=$1 limit=$2 start=$SECONDS status
  shift 2
  case ",$STEPS," in *",$name,"*) ;; *) return 0 ;; esac
  echo "== $name (timeout ${limit} s): $*" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  case $status in
    0) summary+=("ok      $name ($((SECONDS - start)) s)") ;;
    124 | 137) summary+=("TIMEOUT $name (after $limit s)") ;;
    *) summary+=("FAILED  $name (exit status $status, $((SECONDS - start)) s)") ;;
  esac
  [ "$status" = 0 ] || failed=$((failed + 1))
  echo "== $name: exit status $status" | tee -a "$log"
}

echo "== device" | tee "$log"
nvidia-smi -L 2>&1 | tee -a "$log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
grep PRETTY_NAME /etc/os-release 2>&1 | tee -a "$log"
ldd --version 2>&1 | head -1 | tee -a "$log"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 |
  tee -a "$log"
command -v mpirun orted 2>&1 | sed 's/^/system MPI: /' | tee -a "$log"

tar -xJf .gpu-carry/bundle.tar.xz -C "$work" || { echo "no .gpu-carry/bundle.tar.xz" | tee -a "$log"; exit 3; }
bin="$work/bin"
# The wrappers in $bin set the packed programs' environment themselves, so the Python steps keep
# their own; only the CUDA library directories are looked up once here, for all of them.
# shellcheck disable=SC2034  # read by env.sh
bundle=$work
# shellcheck source=bench/gpu/carry_env.sh
CARRY_CUDA_DIRS=$(. "$work/env.sh" && echo "$CARRY_CUDA_DIRS")
export CARRY_CUDA_DIRS
echo "== libraries of the packed tessera" | tee -a "$log"
# shellcheck source=bench/gpu/carry_env.sh
(. "$work/env.sh" && echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" &&
  ldd "$work/libexec/tessera" | grep -E "cuda|cublas|cudnn|nccl|mpi|hdf5|not found") 2>&1 | tee -a "$log"

run_step mpi_runtime 30 sh -c "'$bin/tessera' --version && '$bin/mpirun' -np 2 '$bin/tessera' --version"
run_step conformance 120 "$bin/test_cuda_backend" --gtest_output="xml:$OUT/cuda_conformance.xml"
run_step attention_timing 60 "$bin/test_cuda_backend" --gtest_also_run_disabled_tests \
  --gtest_filter='*DISABLED_Timing*'
run_step cuda_mpi 60 "$bin/test_cuda_mpi" --gtest_output="xml:$OUT/cuda_mpi.xml"
run_step training 150 python3 tests/train/test_backend_training.py "$bin/tessera" "$PWD/configs" cuda
run_step calibration 150 "$bin/tessera" calibrate --backend cuda --precision fp32,bf16 \
  --min-seconds 0.1 -o "$OUT/hardware_profile.json"
run_step system 420 python3 tests/train/test_backend_system.py "$bin/tessera" "$PWD/configs" cuda \
  resume,cross,preempt --report "$OUT/backend_system.json"
budget=$((TOTAL_S - SECONDS - 15))
[ "$budget" -le "$BENCH_MAX_S" ] || budget=$BENCH_MAX_S
if [[ ",$STEPS," != *",benchmark,"* ]]; then
  :
elif [ "$budget" -gt 60 ]; then
  run_step benchmark $((budget + 30)) python3 bench/gpu/bench_gpu.py --tessera "$bin/tessera" \
    --configs "$PWD/configs" --out "$OUT" --budget-s "$budget" --models "$BENCH_MODELS" \
    --precisions "$BENCH_PRECISIONS" --repeats "$BENCH_REPEATS"
else
  summary+=("SKIPPED benchmark (only $budget s left of TOTAL_S=$TOTAL_S)")
fi

{
  echo "== summary ($SECONDS s in all)"
  printf '%s\n' "${summary[@]}"
} | tee -a "$log"
exit "$failed"
