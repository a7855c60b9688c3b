#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh machine of this kind, then runs
# formatting, lints and every test of the workspace. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Binaries first: integration tests start other packages' binaries (cig-testkit::bin).
cargo build --workspace --bins --locked
cargo test --workspace --locked
