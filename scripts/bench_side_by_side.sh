#!/usr/bin/env bash
# Ours vs pytorch-grad-cam on this machine: RUNS alternating runs of our bench and of
# scripts/bench_pgc.py, then one table of medians with the ratio per row (scripts/bench_table.py).
#
#   scripts/bench_side_by_side.sh [RUNS] [CARGO FEATURES]     # default: 3 runs, flex,ndarray
#   PYTHON=/work/pyenv/bin/python scripts/bench_side_by_side.sh 3 flex,ndarray,x86-v4
#
# Needs the Python venv of scripts/README.md (torch, grad-cam). Raw outputs stay in
# out/side-by-side/. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
features="${2:-flex,ndarray}"
python="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"
dir=out/side-by-side
mkdir -p "$dir"
rm -f "$dir"/ours-*.txt "$dir"/pgc-*.json

cargo bench -q --profile dev --features "$features" --bench gradcam --no-run
for r in $(seq 1 "$runs"); do
  echo "run $r of $runs: ours ($features)" >&2
  cargo bench -q --profile dev --features "$features" --bench gradcam -- flex/ >"$dir/ours-$r.txt"
  echo "run $r of $runs: pytorch-grad-cam" >&2
  "$python" scripts/bench_pgc.py --seconds 3 >"$dir/pgc-$r.json" 2>/dev/null
done
"$python" scripts/bench_table.py --ours "$dir"/ours-*.txt --pgc "$dir"/pgc-*.json --backend flex
