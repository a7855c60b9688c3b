#!/usr/bin/env bash
# System packages and registry packages that the tests use as outside peers. Idempotent: only
# installs what is missing, so a second run costs nothing.
set -euo pipefail

apt_packages=()
# sipp (Debian's sip-tester) is the independent SIP peer of the cig-sip tests.
command -v sipp >/dev/null 2>&1 || apt_packages+=(sip-tester)

if ((${#apt_packages[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
  else
    echo "install-test-deps: not root, cannot install ${apt_packages[*]}; tests that need them will fail" >&2
  fi
fi

# libsrtp 2.7 + OpenSSL as a Python wheel: the independent SRTP implementation for interop tests.
python3 -c 'import pylibsrtp' 2>/dev/null || python3 -m pip install -q pylibsrtp
