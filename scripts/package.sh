#!/usr/bin/env bash
# Builds the installation packages of the manual's Initial Installation:
#   target/debian/cig_<version>-1_<arch>.deb         (cargo-deb)
#   target/generate-rpm/cig-<version>-1.<arch>.rpm   (cargo-generate-rpm)
# from cig-server, cig-relay and cig-cli; the package metadata is in bins/cig-server/Cargo.toml,
# the files in packaging/ (docs/operations.md describes both).
#
#   scripts/package.sh                  release build, .deb and .rpm
#   scripts/package.sh --deb            only the .deb (--rpm: only the .rpm)
#   scripts/package.sh --profile dev --no-build --version 0.1.1 --out DIR
#                                       package binaries already built (the package test)
#
# Installs cargo-deb / cargo-generate-rpm with `cargo install --locked` when missing.
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release build=1 deb=1 rpm=1 version="" out=""
while (($#)); do
    case "$1" in
        --deb) rpm=0 ;;
        --rpm) deb=0 ;;
        --profile) profile=$2; shift ;;
        --no-build) build=0 ;;
        --version) version=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

target_dir=${CARGO_TARGET_DIR:-target}
case "$profile" in
    dev) bin_dir=$target_dir/debug ;;
    *) bin_dir=$target_dir/$profile ;;
esac

if ((build)); then
    cargo build --locked --profile "$profile" -p cig-server -p cig-relay -p cig-cli
fi
# Part of the package, written with the messaging side (cig-cli create-maildir).
[ -f scripts/create_cig_maildir ] || {
    echo "package.sh: scripts/create_cig_maildir is missing" >&2
    exit 1
}
for b in cig-server cig-relay cig-cli; do
    [ -x "$bin_dir/$b" ] || { echo "package.sh: $bin_dir/$b is not built" >&2; exit 1; }
done

if ((deb)); then
    command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked
    args=(-p cig-server --no-build --profile "$profile")
    [ -n "$version" ] && args+=(--deb-version "$version-1")
    [ -n "$out" ] && args+=(--output "$out")
    # Debug builds are large: compress fast when packaging them for tests.
    [ "$profile" = dev ] && args+=(--fast --no-strip)
    cargo deb "${args[@]}"
fi

if ((rpm)); then
    command -v cargo-generate-rpm >/dev/null 2>&1 || cargo install cargo-generate-rpm --locked
    args=(-p bins/cig-server --profile "$profile")
    [ -n "$version" ] && args+=(--set-metadata "version = \"$version\"")
    [ -n "$out" ] && args+=(--output "$out")
    cargo generate-rpm "${args[@]}"
fi
