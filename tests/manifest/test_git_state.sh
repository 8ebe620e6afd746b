#!/usr/bin/env bash
# cmake/TesseraGitState.cmake on a scratch repository: the commit, no changes when clean, the
# count and a hash of the changes when a tracked file is edited or an untracked one added, and
# "unknown" outside git; the header is rewritten only when that changes.
# Usage: test_git_state.sh SCRIPT
set -u
script=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
state() { cmake -DSOURCE="$1" -DOUTPUT="$work/state.hpp" -P "$script" && cat "$work/state.hpp"; }
expect() {  # NAME PATTERN TEXT
  if grep -q -- "$2" <<<"$3"; then echo "ok   $1"; else echo "FAIL $1: no '$2' in:"; echo "$3"; failures=$((failures + 1)); fi
}
repo="$work/repo"
mkdir "$repo" && cd "$repo" && git init -q . && echo one >file.txt && git add file.txt &&
  git -c user.name=test -c user.email=test@example.org commit -q -m one || exit 1
head=$(git rev-parse HEAD)
clean=$(state "$repo")
expect "clean tree: its commit" "TESSERA_GIT_COMMIT \"$head\"" "$clean"
expect "clean tree: no changes" "TESSERA_GIT_CHANGED_FILES 0$" "$clean"
before=$(stat -c %y "$work/state.hpp")
sleep 1.1
state "$repo" >/dev/null
after=$(stat -c %y "$work/state.hpp")
[ "$before" = "$after" ] && echo "ok   unchanged state: header not rewritten" ||
  { echo "FAIL the header was rewritten for the same state"; failures=$((failures + 1)); }
echo two >file.txt
edited=$(state "$repo")
expect "edited file: one change" "TESSERA_GIT_CHANGED_FILES 1$" "$edited"
hash_edited=$(grep CHANGES_HASH <<<"$edited")
expect "edited file: a hash of the changes" 'TESSERA_GIT_CHANGES_HASH "[0-9a-f]\{16\}"' "$edited"
echo three >file.txt
other=$(state "$repo")
[ "$(grep CHANGES_HASH <<<"$other")" != "$hash_edited" ] && echo "ok   other changes: another hash" ||
  { echo "FAIL other changes gave the same hash"; failures=$((failures + 1)); }
echo new >untracked.txt
expect "untracked file: counted" "TESSERA_GIT_CHANGED_FILES 2$" "$(state "$repo")"
mkdir "$work/plain"
outside=$(state "$work/plain")
expect "outside git: unknown" 'TESSERA_GIT_COMMIT "unknown"' "$outside"
expect "outside git: no count" "TESSERA_GIT_CHANGED_FILES -1$" "$outside"
exit $((failures > 0))
