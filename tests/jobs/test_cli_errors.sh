#!/usr/bin/env bash
# `tessera slurm` mistakes: one line on stderr naming the problem and the fix, exit status 2,
# and nothing written (stdout empty, no --output file). Then the good cases.
# Usage: test_cli_errors.sh TESSERA CONFIG_DIR
set -u
tessera=$1
configs=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
base=("$configs/tiny.toml" --nodes 1 --tasks-per-node 4 --time 00:10:00)

expect_error() {  # EXPECTED_TEXT ARGS...: exit 2, one stderr line containing the text
  local expected=$1
  shift
  rm -f out.sh
  "$tessera" slurm "$@" --output out.sh >stdout 2>stderr
  local status=$? lines
  lines=$(wc -l <stderr)
  [ "$status" = 2 ] || fail "'$*': exit $status, expected 2"
  [ "$lines" = 1 ] || { fail "'$*': $lines lines on stderr, expected 1:"; cat stderr; }
  grep -qF -- "$expected" stderr || { fail "'$*': stderr lacks '$expected':"; cat stderr; }
  [ ! -s stdout ] && [ ! -e out.sh ] || fail "'$*': something was written despite the error"
}

expect_error "parallel.tp = 3 does not divide model.n_heads = 4; pick a divisor of 4" \
  "$configs/tiny.toml" --nodes 1 --tasks-per-node 3 --time 00:10:00 --set parallel.tp=3
expect_error "train.global_batch = 16 is not divisible by train.micro_batch x dp = 16 x 2" \
  "${base[@]}" --set parallel.tp=2 --set parallel.dp=2
expect_error "--min-nodes 3: on 3 node(s) (3 ranks): train.global_batch = 16 cannot be shared by dp = 3" \
  "$configs/tiny.toml" --nodes 4 --min-nodes 3 --tasks-per-node 1 --time 00:10:00
expect_error "--time '10' is not HH:MM:SS" "$configs/tiny.toml" --nodes 1 --tasks-per-node 1 --time 10
expect_error "site profile 'atlantis' not found; pick one of: generic" \
  "${base[@]}" --set parallel.tp=4 --profile atlantis
expect_error "--chain submits jobs one after another: add --submit" \
  "${base[@]}" --set parallel.tp=4 --chain 3
expect_error "--tasks-per-node 4 with --gpus-per-node 2" "${base[@]}" --set parallel.tp=4 --gpus-per-node 2
expect_error "--signal-grace 900 s is not shorter than --time 00:10:00" \
  "${base[@]}" --set parallel.tp=4 --signal-grace 900
expect_error "--layout tp=3" "${base[@]}" --set train.micro_batch=4 --layout tp=4 --layout tp=3
expect_error "nosuch.toml" "$configs/nosuch.toml" --nodes 1 --tasks-per-node 1 --time 00:10:00
"$tessera" slurm "${base[@]}" --launcher aprun >stdout 2>stderr
status=$?
[ "$status" = 2 ] && head -1 stderr | grep -q -- "--launcher: aprun not in {srun,mpirun}" ||
  fail "--launcher aprun: exit $status, $(cat stderr)"

# Good requests: the script on stdout, or in --output; --submit without sbatch is one line.
"$tessera" slurm "${base[@]}" --set parallel.tp=4 >script.sh 2>stderr ||
  fail "a good request failed: $(cat stderr)"
head -1 script.sh | grep -q '^#!/bin/bash$' || fail "stdout does not start with #!/bin/bash"
grep -q '^#SBATCH --ntasks-per-node=4$' script.sh || fail "no #SBATCH --ntasks-per-node=4"
[ ! -s stderr ] || fail "a good request wrote to stderr: $(cat stderr)"
"$tessera" slurm "${base[@]}" --set parallel.tp=4 --output written.sh 2>stderr ||
  fail "--output failed: $(cat stderr)"
cmp -s <(grep -v '^# Written by' script.sh) <(grep -v '^# Written by' written.sh) ||
  fail "--output wrote something else than stdout"
[ -x written.sh ] || fail "--output file is not executable"
[ -d runs/tiny/slurm ] || fail "--output did not create the log directory runs/tiny/slurm"
"$tessera" slurm --nodes 1 --tasks-per-node 2 --time 01:00:00 --set train.micro_batch=8 \
  --layout tp=2 --layout tp=1 "$configs/tiny.toml" >last.sh 2>stderr &&
  grep -q '^#SBATCH --array=0-1$' last.sh || fail "CONFIG after repeated options: $(cat stderr)"
# A PATH without sbatch, but with what MPI's singleton start needs (orted, and ssh for its check).
mkdir nobatch
for program in orted ssh; do
  ln -s "$(command -v "$program")" nobatch/ 2>/dev/null
done
PATH=$work/nobatch "$tessera" slurm "${base[@]}" --set parallel.tp=4 --submit >stdout 2>stderr
status=$?
[ "$status" = 2 ] && grep -q "sbatch not found on PATH" stderr ||
  fail "--submit without sbatch: exit $status, $(cat stderr)"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "ok: every mistake is one line and exit 2 with nothing written; good requests write the script"
