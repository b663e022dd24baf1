#!/usr/bin/env bash
# Stops the broker scripts/kafka-start.sh started in DIR:
#   scripts/kafka-stop.sh DIR [term|kill]
# term (default): SIGTERM, Kafka's controlled shutdown, SIGKILL if it lingers past 30 s
# (CONCERTD_KAFKA_STOP_TIMEOUT_SECONDS).
# kill: SIGKILL at once, a crash (the next start recovers the logs).
# A broker frozen with SIGSTOP is continued first, so it can act on the signal. Returns once
# the process is gone, so a restart can bind the same ports. Does nothing when it is not running.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [term|kill]" >&2
  exit 2
fi
[ -d "$1" ] || exit 0
dir="$(cd "$1" && pwd)"
mode="${2:-term}"
pidfile="$dir/kafka.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"

# Our broker and not yet exited: the pid may have been reused (by another java too, hence the
# check of its config path), and an exited JVM may stay a zombie for seconds (in a container,
# pid 1 does not always reap orphans at once); a zombie holds no ports.
alive() {
  local stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "${stat##*) }" != Z* ]] || return 1
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$dir/server.properties"* ]]
}

if alive; then
  if [ "$mode" = kill ]; then
    kill -KILL "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true
    for ((t = 0; t < ${CONCERTD_KAFKA_STOP_TIMEOUT_SECONDS:-30} * 10; t++)); do
      alive || break
      sleep 0.1
    done
    alive && kill -KILL "$pid" 2>/dev/null || true
  fi
  for ((t = 0; t < 100; t++)); do alive || break; sleep 0.1; done
  if alive; then
    echo "kafka-stop: pid $pid did not exit" >&2
    exit 1
  fi
fi
rm -f "$pidfile"
