#!/bin/sh
# Install the Debian packages harness needs that pip cannot provide.
#
#   scripts/install-system-deps.sh            the base set (what `harness run` and the tests need)
#   scripts/install-system-deps.sh browser    headless Chromium for the report checks (tox -e browser)
#
# Why: the code sandbox (harness/sandbox.py) runs untrusted generated programs in
# bubblewrap, as an unprivileged uid, with the system python3 when the harness's own
# interpreter is private (e.g. a pyenv under /root); setpriv and prlimit come from
# util-linux, which Debian always has. CI runs this before the tests, so the sandbox
# tests fail loudly instead of skipping when bwrap is missing.
#
# Idempotent and quiet: a no-op when every package is installed; apt's output is shown
# only when it fails. Skips (exit 0, one line on stderr) when not root or without
# apt-get, since a developer without root can still install the packages by hand.
set -eu

packages="bubblewrap python3-minimal"
for group in "$@"; do
    case "$group" in
        base) ;;
        browser) packages="chromium chromium-driver" ;;
        *) echo "install-system-deps: unknown group '$group' (known: base, browser)" >&2; exit 2 ;;
    esac
done

missing=""
for pkg in $packages; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install by hand:$missing" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: not root; run: sudo apt-get install -y$missing" >&2
    exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # word splitting of the package list is intended
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-system-deps: failed to install:$missing" >&2
    exit 1
fi
echo "install-system-deps: installed$missing" >&2
