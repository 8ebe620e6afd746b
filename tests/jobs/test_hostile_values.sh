#!/usr/bin/env bash
# Text from users never runs as a command in a generated batch script. Slurm names with a
# newline (which would end an #SBATCH line and start a shell line) or a '/' (a job name is also
# the script's file name) are refused with one line, exit status 2, nothing written; paths and
# settings full of shell syntax are accepted, and running the script (under bash, with stand-ins
# for srun and scontrol) hands them to tessera verbatim while nothing they spell out runs.
# Usage: test_hostile_values.sh TESSERA CONFIG_DIR
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
base=(--nodes 1 --tasks-per-node 1 --time 00:10:00 --set run.dir=run)

# refused NAME WORD ARGS...: tessera slurm ARGS exits 2 with one stderr line holding WORD, and
# neither the marker file nor a script appears.
refused() {
  local name=$1 word=$2
  shift 2
  "$tessera" slurm "$configs/tiny.toml" "${base[@]}" "$@" --output job.sh >out.txt 2>err.txt
  local status=$?
  if [ "$status" -ne 2 ] || [ "$(wc -l <err.txt)" -ne 1 ] || ! grep -q -- "$word" err.txt; then
    fail "$name: status $status, expected 2 and one line with '$word':"
    cat err.txt
  else
    echo "ok   $name refused: $(cat err.txt)"
  fi
  [ -e "$work/PWNED" ] && fail "$name: the injected command ran"
  [ -e job.sh ] && fail "$name: a script was written"
  rm -f job.sh
}
refused "newline in --account" "--account 'acc\\\\x0atouch" --account $'acc\ntouch '"$work"'/PWNED #'
refused "newline in --qos" "--qos" --qos $'normal\ntouch '"$work"'/PWNED'
refused "newline in --partition" "--partition" --partition $'batch\ntouch '"$work"'/PWNED'
refused "newline in --job-name" "--job-name" --job-name $'job\ntouch '"$work"'/PWNED'
refused "a path as --job-name" "--job-name '../../../../escaped'" --job-name ../../../../escaped --submit
refused "a slash in --job-name" "--job-name" --job-name a/b
refused "newline in run.dir" "run.dir" --set run.dir=$'"run\ntouch '"$work"'/PWNED"'
[ -e "$work/../../../../escaped.sbatch" ] && fail "a script was written outside run.dir"

# Accepted: a config file named with shell syntax and settings that spell out commands.
hostile_config="$work/cfg \$(touch PWNED) \`touch PWNED\`; touch PWNED 'q'.toml"
cp "$configs/tiny.toml" "$hostile_config"
source_value='$(touch PWNED)`touch PWNED`;touch PWNED'
mkdir bin
cat >bin/srun <<'S'
#!/bin/bash
while [ "${1:0:2}" = -- ]; do shift; done  # srun's own options
exec "$@"
S
cat >bin/scontrol <<'S'
#!/bin/bash
exit 0
S
cat >bin/fake-tessera <<'S'
#!/bin/bash
printf '%s\n' "$@" >"$FAKE_DIR/arguments"
exit 0
S
chmod +x bin/*
"$tessera" slurm "$hostile_config" "${base[@]}" --job-name hostile --tessera "$work/bin/fake-tessera" \
  --set "data.source=\"$source_value\"" --output job.sh 2>gen.err ||
  { fail "tessera slurm refused values it must quote:"; cat gen.err; }
if [ -e job.sh ]; then
  PATH=$work/bin:$PATH FAKE_DIR=$work SLURM_JOB_ID=42 SLURM_JOB_NAME=hostile \
    SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 bash job.sh >run.log 2>&1 || {
    fail "the script failed:"
    cat run.log
  }
  [ -e "$work/PWNED" ] && fail "a command spelled out in a path or setting ran"
  if ! grep -qxF "$hostile_config" arguments || ! grep -qxF "data.source=\"$source_value\"" arguments; then
    fail "tessera did not get the config path and the setting verbatim:"
    cat arguments
  else
    echo "ok   shell syntax in the config's name and a setting reached tessera verbatim; nothing ran"
  fi
  grep -n $'^[^#]' job.sh | grep -F 'touch PWNED' | grep -v "^[0-9]*:train=(" &&
    fail "the hostile text is on a script line outside the quoted train array"
fi
exit $((failures > 0))
