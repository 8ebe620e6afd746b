#!/bin/sh
# Usage: expect_job_abort.sh EXPECTED_TEXT COMMAND...
# Passes when COMMAND ends (within 30 s) with a non-zero status and prints EXPECTED_TEXT.
expected="$1"
shift
output=$(timeout 30 "$@" 2>&1)
status=$?
printf '%s\n' "$output"
if [ "$status" -eq 124 ]; then
  echo "expect_job_abort: the job did not end within 30 s" >&2
  exit 1
fi
if [ "$status" -eq 0 ]; then
  echo "expect_job_abort: the job exited with status 0" >&2
  exit 1
fi
case "$output" in
  *"$expected"*) exit 0 ;;
esac
echo "expect_job_abort: the output does not contain \"$expected\"" >&2
exit 1
