#!/usr/bin/env bash
# System packages and registry packages that the tests use as outside peers. Idempotent: only
# installs what is missing, so a second run costs nothing.
set -euo pipefail

apt_packages=()
# sipp (Debian's sip-tester) is the independent SIP peer of the cig-sip tests.
command -v sipp >/dev/null 2>&1 || apt_packages+=(sip-tester)
# baresip (its core package: the binary and the aufile, sndfile, ctrl_tcp modules) is the
# independent SIP phone of the cig-server audio test.
command -v baresip >/dev/null 2>&1 || apt_packages+=(baresip-core)
# kamailio (its dispatcher module with OPTIONS probing) is the SIP load balancer in front of two
# gateways in bins/cig-server/tests/kamailio.rs.
command -v kamailio >/dev/null 2>&1 || apt_packages+=(kamailio)

if ((${#apt_packages[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
  else
    echo "install-test-deps: not root, cannot install ${apt_packages[*]}; tests that need them will fail" >&2
  fi
fi

# cargo-deb builds the .deb that bins/cig-server/tests/package.rs installs (scripts/package.sh).
# Pinned: 3.x packages the debug binaries of the tests with a warning (--profile dev). About
# 3 CPU-minutes to build (docs/operations.md).
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --version 3.8.0 --locked

# libsrtp 2.7 + OpenSSL as a Python wheel: the independent SRTP implementation for interop tests.
python3 -c 'import pylibsrtp' 2>/dev/null || python3 -m pip install -q pylibsrtp

# npm `smpp` 0.5 (node 20) is the independent SMSC of the cig-msg SMPP tests; installed into a
# cache outside the repository (CIG_NPM_DIR, default ~/.cache/cig-test-npm).
npm_dir="${CIG_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cig-test-npm}"
if [ ! -f "$npm_dir/node_modules/smpp/package.json" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends nodejs npm
    else
      echo "install-test-deps: not root, cannot install nodejs/npm; the SMPP tests will fail" >&2
    fi
  fi
  mkdir -p "$npm_dir"
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" smpp@0.5
fi
