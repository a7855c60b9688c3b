#!/usr/bin/env bash
# The main job: builds the CIG binaries (release) and runs cig-demo, a whole secure domain,
# the gateway and a SIP phone on loopback, with a call each way. Needs only the Rust
# toolchain. Extra arguments go to cig-demo (e.g. --keep, --talk 5).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q \
    -p cig-kms -p cig-crs -p cig-cli -p cig-relay -p cig-server -p cig-phone -p cig-demo
exec "${CARGO_TARGET_DIR:-target}/release/cig-demo" "$@"
