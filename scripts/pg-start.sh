#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for tests and prints its URL once it accepts
# connections:
#   scripts/pg-start.sh DIR [PORT]  ->  postgresql://postgres@127.0.0.1:PORT/postgres
# DIR holds the cluster (DIR/data, created on first use), its Unix socket and DIR/server.log;
# running it again on the same DIR restarts that cluster (pass the same PORT to keep the URL).
# Without PORT, a free one is picked. Stop with scripts/pg-stop.sh DIR [fast|immediate].
#
# For tests only: fsync, synchronous_commit and full_page_writes are off, so a crash of
# PostgreSQL or of the machine may lose or corrupt data. That is fine here: the crash tests
# kill concertd, never PostgreSQL.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
bin=/usr/lib/postgresql/15/bin
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
port="${2:-}"

# initdb and postgres refuse to run as root: as root, run them as the postgres system user.
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
  elif command -v runuser >/dev/null; then
    runuser -u postgres -- "$@"
  else
    su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
  fi
}
if [ "$(id -u)" -eq 0 ]; then
  id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh postgres
  chown -R postgres: "$dir"
fi
cd "$dir"  # the server user must be able to enter its working directory

if [ ! -f "$dir/data/PG_VERSION" ]; then
  if ! as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C \
      --no-sync >"$dir/initdb.log" 2>&1; then
    echo "pg-start: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
  fi
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 40000))
}

# A picked port can be taken before the server binds it: try a few.
attempts=1
[ -n "$port" ] || attempts=5
for ((i = 0; i < attempts; i++)); do
  p="${port:-$(free_port)}"
  options="-p $p -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off"
  options+=" -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
  options+=" -c shared_buffers=128MB"
  if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" \
      start >/dev/null 2>&1; then
    echo "postgresql://postgres@127.0.0.1:$p/postgres"
    exit 0
  fi
done
echo "pg-start: PostgreSQL did not start; the end of $dir/server.log:" >&2
tail -n 20 "$dir/server.log" >&2 || true
exit 1
