#!/usr/bin/env bash
# The crate as a registry gets it: `cargo package`, then the unpacked .crate built on its own
# (no workspace, no assets, no fixtures) with its doctests run. Needs network for the package's
# lock file. Usage: scripts/check_package.sh [features]   (default flex,ndarray,wgpu)
set -euo pipefail
cd "$(dirname "$0")/.."
features="${1:-flex,ndarray,wgpu}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/cargo-target}"
cargo package -p gradcam --no-verify
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
unpacked="$(mktemp -d)"
tar xzf "$CARGO_TARGET_DIR/package/gradcam-$version.crate" -C "$unpacked"
cd "$unpacked/gradcam-$version"
ls assets/
cargo test --doc --features "$features"
echo "the packaged gradcam-$version builds and its doctests pass ($features)"
