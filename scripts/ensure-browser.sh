#!/usr/bin/env bash
# Makes sure the web chat browser test can run: Debian's Chromium at /usr/bin/chromium (or
# $CHROMIUM), Node.js with npm, and playwright-core installed in tests/browser (npm ci, pinned
# by its package-lock.json). Installs what is missing; `make test` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'ensure-browser: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=false
apt_install() {
    if ! $apt_updated; then as_root apt-get update -qq; apt_updated=true; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    say "installing Chromium (Debian package) for the web chat browser test"
    apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing Node.js and npm"
    apt_install nodejs npm
fi
lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.package-lock.json
if [ ! -d tests/browser/node_modules/playwright-core ] || [ "$lock" -nt "$stamp" ]; then
    say "installing playwright-core in tests/browser (npm ci)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
say "Chromium $("$chromium" --version 2>/dev/null | grep -o '[0-9.]*' | head -n1) and playwright-core are ready"
