#!/usr/bin/env bash
# Stops the server scripts/mariadb-start.sh started in DIR:
#   scripts/mariadb-stop.sh DIR [term|kill]
# term (default): a clean shutdown (SHUTDOWN on the socket, SIGTERM if that fails), SIGKILL if it
# lingers past 30 s (CONCERTD_MARIADB_STOP_TIMEOUT_SECONDS).
# kill: SIGKILL at once, a crash (the next start runs InnoDB crash recovery).
# A server frozen with SIGSTOP is continued first, so it can act on the signal. Returns once the
# process is gone, so a restart can bind the same port. Does nothing when it is not running.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [term|kill]" >&2
  exit 2
fi
[ -d "$1" ] || exit 0
dir="$(cd "$1" && pwd)"
mode="${2:-term}"
pidfile="$dir/mariadb.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"

# Our server and not yet exited: the pid may have been reused (by another mariadbd too, hence
# the check of its data directory), and an exited server may stay a zombie for a while (in a
# container, pid 1 does not always reap orphans at once); a zombie holds no port.
alive() {
  local stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "${stat##*) }" != Z* ]] || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"--datadir=$dir/data "* ]]
}

if alive; then
  kill -CONT "$pid" 2>/dev/null || true
  if [ "$mode" = kill ]; then
    kill -KILL "$pid" 2>/dev/null || true
  else
    # SHUTDOWN waits for nothing a test left open; SIGTERM does the same if the socket fails.
    mariadb-admin --no-defaults --protocol=socket -S "$dir/mariadb.sock" -u root \
      --connect-timeout=2 shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for ((t = 0; t < ${CONCERTD_MARIADB_STOP_TIMEOUT_SECONDS:-30} * 10; t++)); do
      alive || break
      sleep 0.1
    done
    alive && kill -KILL "$pid" 2>/dev/null || true
  fi
  for ((t = 0; t < 100; t++)); do alive || break; sleep 0.1; done
  if alive; then
    echo "mariadb-stop: pid $pid did not exit" >&2
    exit 1
  fi
fi
rm -f "$pidfile"
