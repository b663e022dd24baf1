#!/usr/bin/env bash
# Runs the black-box end-to-end suite (tests/e2e) against a built concertd.
#   scripts/test-e2e.sh [path/to/concertd] [extra pytest arguments...]
# Creates or updates .venv from tests/e2e/requirements.txt (fast when nothing changed).
# Back end: CONCERTD_E2E_BACKEND=sqlite (default), postgres (the suite starts a throwaway
# PostgreSQL 15 cluster with scripts/pg-start.sh and gives every concertd a fresh database) or
# postgres+redis (the same, and every concertd also gets a throwaway redis-server of its own,
# scripts/redis-start.sh; processes on one database share one) or mariadb (a throwaway MariaDB
# 10.11, scripts/mariadb-start.sh, and a fresh database per concertd). scripts/test-e2e-all.sh
# runs them all, one after the other.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:-$root/build/release/concertd}"
shift || true
if [ ! -x "$binary" ]; then
  echo "test-e2e: no executable concertd at $binary" >&2
  exit 2
fi
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

venv="$root/.venv"
requirements="$root/tests/e2e/requirements.txt"
stamp="$venv/.e2e-requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
fi

backend="${CONCERTD_E2E_BACKEND:-sqlite}"
case "$backend" in
  sqlite) ;;
  postgres|postgres+redis)
    if [ ! -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
      echo "test-e2e: CONCERTD_E2E_BACKEND=$backend needs PostgreSQL 15 (scripts/install-deps.sh)" >&2
      exit 2
    fi
    if [ "$backend" = postgres+redis ] && ! command -v redis-server >/dev/null; then
      echo "test-e2e: CONCERTD_E2E_BACKEND=postgres+redis needs redis-server (scripts/install-deps.sh)" >&2
      exit 2
    fi ;;
  mariadb)
    if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
      echo "test-e2e: CONCERTD_E2E_BACKEND=mariadb needs MariaDB 10.11 (scripts/install-deps.sh)" >&2
      exit 2
    fi ;;
  *) echo "test-e2e: CONCERTD_E2E_BACKEND must be sqlite, postgres, postgres+redis or mariadb, not '$backend'" >&2
     exit 2 ;;
esac
export CONCERTD_E2E_BACKEND="$backend"
export CONCERTD_BINARY="$binary"
cd "$root"
# Each test has its own timeout (pytest.ini); the whole run has one too.
exec timeout --kill-after=30 1200 "$venv/bin/python" -m pytest tests/e2e -q -p no:cacheprovider "$@"
