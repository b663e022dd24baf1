#!/usr/bin/env bash
# Starts a throwaway MariaDB 10.11 for tests and prints its URL once it answers:
#   scripts/mariadb-start.sh DIR [PORT]  ->  mysql://concertd:concertd@127.0.0.1:PORT/concertd
# DIR holds the data (DIR/data, created on first use), the socket DIR/mariadb.sock, the pid file
# DIR/mariadb.pid and the log DIR/server.log. Running it again on the same DIR restarts that
# server with its data (pass the same PORT to keep the URL). Without PORT, a free one is picked.
# Stop with scripts/mariadb-stop.sh DIR [term|kill].
#
# The user `concertd` (password `concertd`) may do anything, so the tests can create a database
# per concertd; root has no password and is reachable on the socket only.
#
# For tests only: innodb_flush_log_at_trx_commit=2 and no doublewrite buffer, so a crash of the
# machine may lose the last second of commits; a crash of mariadbd alone (kill -9) loses nothing.
# The server keeps its defaults where the adapter must not lean on a test-only value:
# transaction isolation stays REPEATABLE-READ (MariaDB's and MySQL 8's default; the adapter sets
# its own level per session) and innodb_lock_wait_timeout stays 50 s (the adapter sets its own).
# sql_mode is MySQL 8's default (it adds ONLY_FULL_GROUP_BY, NO_ZERO_DATE, NO_ZERO_IN_DATE to
# MariaDB's), so SQL that MySQL 8 would reject fails here too. time_zone is UTC.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
port="${2:-}"
here="$(cd "$(dirname "$0")" && pwd)"

# A server still running on DIR (a restart): stop it cleanly first.
"$here/mariadb-stop.sh" "$dir"

# mariadbd refuses to run as root unless told to: as root, let it drop to the package's `mysql`
# user, which must then own DIR (like pg-start.sh does for `postgres`).
user="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
  id -u mysql >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mysql
  user=mysql
  chown -R mysql: "$dir"
fi

# Shared by the bootstrap and the server: --no-defaults ignores /etc/mysql, so nothing on the
# machine changes the test server. Small InnoDB (several servers may run at once on a small box);
# native AIO off because containers often forbid io_setup/io_uring.
common=(
  --no-defaults --datadir="$dir/data" --user="$user"
  --innodb-buffer-pool-size=64M --innodb-log-file-size=32M --innodb-use-native-aio=0
  --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
  --skip-name-resolve --skip-log-bin
)

if [ ! -d "$dir/data/mysql" ]; then
  if ! mariadb-install-db "${common[@]}" --auth-root-authentication-method=normal \
      --skip-test-db >"$dir/install-db.log" 2>&1; then
    echo "mariadb-start: mariadb-install-db failed:" >&2
    tail -n 30 "$dir/install-db.log" >&2
    exit 1
  fi
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 40000))
}
sql() { mariadb --no-defaults --protocol=socket -S "$dir/mariadb.sock" -u root -N -B "$@"; }

# A picked port can be taken before the server binds it: try a few. mariadbd binds TCP before
# it creates its socket and exits when the bind fails, so an answer on our socket (in DIR, so
# no other server's) means it owns the port.
attempts=1
[ -n "$port" ] || attempts=5
for ((i = 0; i < attempts; i++)); do
  p="${port:-$(free_port)}"
  rm -f "$dir/mariadb.pid"
  # setsid: the server outlives this script and the caller's process group (Ctrl-C, test runner).
  setsid mariadbd "${common[@]}" --bind-address=127.0.0.1 --port="$p" \
    --socket="$dir/mariadb.sock" --pid-file="$dir/mariadb.pid" --log-error="$dir/server.log" \
    --max-connections=300 --default-time-zone=+00:00 \
    --sql-mode=ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION \
    </dev/null >/dev/null 2>&1 &
  server=$!
  # Up to 60 s (InnoDB crash recovery after a kill -9 takes a moment); give up early when the
  # server died.
  for ((t = 0; t < 600; t++)); do
    if mariadb-admin --no-defaults --protocol=socket -S "$dir/mariadb.sock" -u root \
        --connect-timeout=2 ping >/dev/null 2>&1; then
      # IF NOT EXISTS: a restart of a DIR that has them already.
      sql -e "CREATE USER IF NOT EXISTS 'concertd'@'%' IDENTIFIED BY 'concertd';
              GRANT ALL PRIVILEGES ON *.* TO 'concertd'@'%';
              CREATE DATABASE IF NOT EXISTS concertd;"
      echo "$p" >"$dir/mariadb.port"
      echo "mysql://concertd:concertd@127.0.0.1:$p/concertd"
      exit 0
    fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  "$here/mariadb-stop.sh" "$dir" kill
  kill -KILL "$server" 2>/dev/null || true  # our own child, in case it never wrote its pid file
  wait "$server" 2>/dev/null || true
done
echo "mariadb-start: mariadbd did not start; the end of $dir/server.log:" >&2
tail -n 20 "$dir/server.log" >&2 || true
exit 1
