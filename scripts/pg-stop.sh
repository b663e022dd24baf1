#!/usr/bin/env bash
# Stops the cluster scripts/pg-start.sh started in DIR:
#   scripts/pg-stop.sh DIR [fast|smart|immediate]
# `immediate` is a crash from the clients' point of view (no shutdown checkpoint; the next
# start recovers). Does nothing when the cluster is not running.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [fast|smart|immediate]" >&2
  exit 2
fi
dir="$(cd "$1" && pwd)"
mode="${2:-fast}"
[ -f "$dir/data/postmaster.pid" ] || exit 0

as_owner() {
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
  elif command -v runuser >/dev/null; then
    runuser -u postgres -- "$@"
  else
    su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
  fi
}
cd "$dir"
as_owner /usr/lib/postgresql/15/bin/pg_ctl -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
