#!/bin/sh
# Install the Debian packages harness needs at run time that pip cannot provide.
#
# Why: the code sandbox (harness/sandbox.py) runs untrusted generated programs
# inside bubblewrap; setpriv and prlimit come from util-linux (always present on
# Debian). CI runs this script before the tests, so the sandbox tests fail loudly
# instead of skipping when bwrap is missing.
#
# Idempotent and quiet: a no-op when every package is installed; skips (exit 0,
# one line on stderr) when not root or when apt-get is unavailable, because a
# developer without root can still install the packages by hand.
set -eu

PACKAGES="bubblewrap"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install by hand:$missing" >&2
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: not root; run: sudo apt-get install -y$missing" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-system-deps: installed$missing" >&2
