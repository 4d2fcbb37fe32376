#!/usr/bin/env bash
# First-call cost on wgpu, with and without CubeCL's persistent autotune cache.
#
# CubeCL (through Burn) keeps autotune results in `<workspace>/target/environment/` by default
# (cubecl-runtime's default `persistence` feature), so a second process skips the tuning. This
# script times the `explain` example three times in fresh processes: with the cache emptied, with
# the cache it just wrote, and with the cache switched off (`CUBECL_AUTOTUNE_CACHE=false`). The
# existing cache is moved aside first and put back at the end.
#
#   scripts/first_call.sh [explain args...]     # default: assets/chelsea.png (SqueezeNet)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(assets/chelsea.png)

cargo build -q --features flex,ndarray,wgpu --example explain
bin="$CARGO_TARGET_DIR/debug/examples/explain"
out="$(mktemp -d)"
cache=target/environment
saved=""
if [ -d "$cache" ]; then
  saved="$(mktemp -d)"
  mv "$cache" "$saved/"
fi
restore() {
  rm -rf "$cache"
  if [ -n "$saved" ]; then mv "$saved/environment" "$cache"; fi
}
trap restore EXIT

run() {
  local label="$1"
  shift
  local start end
  start=$(date +%s.%N)
  "$@" "$bin" "${args[@]}" --device wgpu --out "$out/map.png" >/dev/null
  end=$(date +%s.%N)
  awk -v l="$label" -v s="$start" -v e="$end" 'BEGIN { printf "%-40s %6.1f s\n", l, e - s }'
}

run "first process, empty cache" env
run "second process, cache from the first" env
run "cache off (CUBECL_AUTOTUNE_CACHE=false)" env CUBECL_AUTOTUNE_CACHE=false
