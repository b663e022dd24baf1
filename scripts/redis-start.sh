#!/usr/bin/env bash
# Starts a throwaway redis-server for tests and prints its URL once it answers PING:
#   scripts/redis-start.sh DIR [PORT]  ->  redis://127.0.0.1:PORT/0
# It listens on 127.0.0.1 only, runs daemonized with DIR as its working directory
# (DIR/redis.pid, DIR/redis.log) and persists nothing. Running it again on the same DIR
# restarts that server (pass the same PORT to keep the URL). Without PORT, a free one is
# picked. Stop with scripts/redis-stop.sh DIR.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
port="${2:-}"
here="$(cd "$(dirname "$0")" && pwd)"

"$here/redis-stop.sh" "$dir"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 40000))
}

# The daemon forks before it binds, so a taken port shows only as no PONG: try a few ports.
attempts=1
[ -n "$port" ] || attempts=5
for ((i = 0; i < attempts; i++)); do
  p="${port:-$(free_port)}"
  rm -f "$dir/redis.pid"
  redis-server --bind 127.0.0.1 --port "$p" --daemonize yes --dir "$dir" \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no \
    >/dev/null 2>&1 || continue
  # Up to 10 s for PONG; give up early when the daemon died (it writes the pidfile after it
  # bound the port, so a pidfile naming a dead process means it exited).
  for ((t = 0; t < 100; t++)); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null)" = "PONG" ]; then
      echo "$p" >"$dir/redis.port"
      echo "redis://127.0.0.1:$p/0"
      exit 0
    fi
    if [ -f "$dir/redis.pid" ] && ! kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  "$here/redis-stop.sh" "$dir"
done
echo "redis-start: redis-server did not start; the end of $dir/redis.log:" >&2
tail -n 20 "$dir/redis.log" >&2 || true
exit 1
