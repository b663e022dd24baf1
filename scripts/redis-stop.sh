#!/usr/bin/env bash
# Stops the redis-server scripts/redis-start.sh started in DIR:
#   scripts/redis-stop.sh DIR
# SHUTDOWN NOSAVE, then SIGTERM and at last SIGKILL if it lingers; returns once the process
# is gone, so a restart can bind the same port. Does nothing when it is not running.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
[ -d "$1" ] || exit 0
dir="$(cd "$1" && pwd)"
pidfile="$dir/redis.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"

# A redis-server that has not exited: the pid may have been reused, and an exited daemon may
# stay a zombie for a while (in a container, pid 1 does not always reap orphans).
alive() {
  local stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "$stat" == *"(redis-server)"* && "${stat##*) }" != Z* ]]
}

if alive && [ -f "$dir/redis.port" ]; then
  redis-cli -h 127.0.0.1 -p "$(cat "$dir/redis.port")" shutdown nosave >/dev/null 2>&1 || true
fi
for ((t = 0; t < 50; t++)); do
  alive || break
  [ "$t" -ne 20 ] || kill -TERM "$pid" 2>/dev/null || true
  sleep 0.1
done
if alive; then
  kill -KILL "$pid" 2>/dev/null || true
  for ((t = 0; t < 50; t++)); do alive || break; sleep 0.1; done
fi
rm -f "$pidfile"
