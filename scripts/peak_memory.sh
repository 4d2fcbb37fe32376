#!/usr/bin/env bash
# Peak memory (maximum resident set size, from /usr/bin/time -v) of the `gradcam` command on the
# inputs that once took gigabytes: one 16384 x 10922 PNG (a 0.5 MB file), twelve links to it,
# `--resize center-crop` on a 1 x 16384 PNG, and `--top 1000` on eight photos.
#
#   scripts/peak_memory.sh [CARGO FEATURES]      # default: flex
#
# The PNGs are written by the Python standard library (zlib, struct): no venv needed. Outputs
# stay in out/peak-memory/. BENCHMARKS.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
features="${1:-flex}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"
dir=out/peak-memory
rm -rf "$dir" && mkdir -p "$dir/big" "$dir/links" "$dir/thin" "$dir/eight"

cargo build -q -p gradcam-cli --features "$features" --bin gradcam
bin="$CARGO_TARGET_DIR/debug/gradcam"

python3 - "$dir" <<'EOF'
import struct, sys, zlib

def png(path, width, height, rgb):
    """A flat RGB PNG, written row by row through one zlib stream."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + bytes(rgb) * width
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))

out = sys.argv[1]
png(f"{out}/big/big.png", 16384, 10922, (120, 90, 60))
png(f"{out}/thin/thin.png", 1, 16384, (30, 160, 90))
EOF
for i in $(seq 1 12); do ln -s ../big/big.png "$dir/links/link$i.png"; done
for i in $(seq 1 8); do cp assets/chelsea.png "$dir/eight/photo$i.png"; done

measure() { # name, then the command's arguments
  local name="$1"; shift
  /usr/bin/time -v "$bin" "$@" >"$dir/$name.log" 2>&1 || true
  local kib seconds
  kib=$(grep 'Maximum resident set size' "$dir/$name.log" | awk '{print $NF}')
  seconds=$(grep 'Elapsed (wall clock)' "$dir/$name.log" | awk '{print $NF}')
  printf '%-40s %8d MiB  %s\n' "$name" $((kib / 1024)) "$seconds"
}
echo "peak RSS of the gradcam command ($features, debug build of the crate, dependencies optimised)"
measure "one 16384x10922 PNG" "$dir/big" --out "$dir/o1"
measure "twelve links to it, --batch 8" "$dir/links" --out "$dir/o2"
measure "1x16384 PNG, --resize center-crop" "$dir/thin" --resize center-crop --out "$dir/o3"
measure "eight photos, --top 1000" "$dir/eight" --top 1000 --out "$dir/o4"
