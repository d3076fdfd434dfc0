#!/usr/bin/env bash
# Installs what the project needs on a Debian machine, only where it is missing:
# PostgreSQL, Redis, nginx and Chromium (with its driver) from Debian's packages, then a virtualenv from the locked requirements.
# `setup.sh bench` also installs wrk and the benchmark's requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-dev}
VENV=${VENV:-.venv}

# Each check looks for what the package installs (also off PATH: /usr/sbin is not on a user's),
# so nothing present is installed again and apt-get runs only when something is missing.
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# Debian's python3 has the venv module without ensurepip, which python3-venv adds and venv needs.
[ -x "$VENV/bin/python" ] || python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ "$profile" != bench ] || command -v wrk >/dev/null || missing+=(wrk)
# The console's browser test (tests/e2e/test_console.py): Debian's Chromium and the chromedriver
# built with it, so their versions always match (nothing is downloaded at test time). A Chrome
# with its matching driver already installed (GitHub's Ubuntu runners) is used as it is.
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# promtool (Debian's prometheus package): make test checks monitoring/ with it.
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)  # GitHub's Ubuntu runners: passwordless sudo
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=900 update -qq
  # Debian 12 has nginx-light; newer Debian and Ubuntu releases have only nginx.
  if [[ " ${missing[*]} " == *" nginx-light "* ]] && ! apt-cache show nginx-light >/dev/null 2>&1; then
    missing=("${missing[@]/nginx-light/nginx}")
  fi
  echo "setup: installing ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start their own servers where they can; ours run on their own ports.

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# From the lock: every transitive requirement pinned and checked against its hash (make lock).
stamp="$VENV/.requirements-$profile.sha"
want=$(cat "requirements/$profile.lock" requirements/lint.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q --require-hashes -r "requirements/$profile.lock"
  # actionlint (make lint checks .github/workflows with it): its package downloads the binary from
  # GitHub while installing, so where GitHub is out of reach it is left out and make lint says so.
  "$VENV/bin/pip" install -q -r requirements/lint.txt >/dev/null 2>&1 \
    || echo "setup: actionlint not installed (requirements/lint.txt fetches it from GitHub, unreachable here)" >&2
  echo "$want" > "$stamp"
fi
