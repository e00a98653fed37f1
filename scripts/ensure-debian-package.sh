#!/usr/bin/env bash
# Some tests drive programs from Debian's packages (never a download): Chromium for the
# browser tests, nginx as the load balancer of the chaos tests. Install a package when
# its program is missing and we may; otherwise say what to do.
#
#   scripts/ensure-debian-package.sh PROGRAM PACKAGE WHAT-NEEDS-IT
#   e.g. scripts/ensure-debian-package.sh /usr/bin/chromium chromium "the browser tests"
set -euo pipefail
program=$1 package=$2 purpose=$3
[ -x "$program" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's $package for $purpose ..."
    # Another install (unattended upgrades, a second checkout's tests) may hold dpkg's
    # lock for a while: wait for it rather than fail.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        "$package" >/dev/null
    exit 0
fi
echo "$purpose need Debian's $package at $program: sudo apt-get install $package" >&2
exit 1
