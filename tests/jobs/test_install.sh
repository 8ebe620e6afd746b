#!/usr/bin/env bash
# `cmake --install` into a fresh prefix, then the installed modulefile through Lmod: `module
# load tessera` puts the installed binary on PATH, and `tessera slurm` finds the installed site
# profiles and writes a script that runs the installed binary.
# Usage: test_install.sh BUILD_DIR CONFIG_DIR
set -u
build=$1
configs=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
cmake --install "$build" --prefix "$prefix" >"$prefix/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -5 "$prefix/install.log")"
for file in bin/tessera share/modulefiles/tessera/@VERSION@.lua share/tessera/jobs/run_and_requeue.sh \
  share/tessera/profiles/generic.toml share/tessera/profiles/juwels-booster-example.toml \
  share/tessera/profiles/marenostrum5-gpp-example.toml share/tessera/configs/tiny.toml; do
  file=${file//@VERSION@/$TESSERA_VERSION}
  [ -e "$prefix/$file" ] || fail "cmake --install did not install $file"
done

lmod_init=$(ls /usr/share/lmod/*/init/bash 2>/dev/null | head -1)
[ -n "$lmod_init" ] || fail "Lmod not found (/usr/share/lmod/*/init/bash); install it with scripts/install-deps.sh"
# shellcheck disable=SC1090
. "$lmod_init"
cd "$prefix" || exit 1
module use "$prefix/share/modulefiles"
module load tessera || fail "module load tessera failed"
[ "$(command -v tessera)" = "$prefix/bin/tessera" ] || fail "tessera on PATH is $(command -v tessera), not the installed one"
[ "$TESSERA_ROOT" = "$prefix" ] || fail "TESSERA_ROOT is '$TESSERA_ROOT', expected $prefix"
tessera --version | grep -q "tessera $TESSERA_VERSION" || fail "tessera --version: $(tessera --version)"
module whatis tessera 2>&1 | grep -q "Version: $TESSERA_VERSION" || fail "module whatis lacks the version"
tessera slurm "$prefix/share/tessera/configs/tiny.toml" --nodes 1 --tasks-per-node 4 \
  --gpus-per-node 4 --time 01:00:00 --set parallel.tp=4 --profile juwels-booster-example >job.sh ||
  fail "tessera slurm with the installed profile failed"
grep -q "^# Site profile: juwels-booster-example ($prefix/share/tessera/profiles/" job.sh ||
  fail "the profile did not come from the installation: $(grep 'Site profile' job.sh)"
grep -q "^train=($prefix/bin/tessera train " job.sh || fail "the script does not run the installed binary"
module unload tessera
[ "$(command -v tessera)" != "$prefix/bin/tessera" ] || fail "module unload left tessera on PATH"
echo "ok: installed binary, modulefile (Lmod load/unload), profiles, configs and job template"
