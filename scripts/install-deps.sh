#!/usr/bin/env bash
# Installs the Debian packages concertd builds and tests with. Idempotent: fast when all is there.
set -euo pipefail
packages=(
  clang-16 g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libsqlite3-dev sqlite3 libpq-dev libspdlog-dev libfmt-dev libcli11-dev libgtest-dev postgresql
  libhiredis-dev redis-server librdkafka-dev
  libmariadb-dev mariadb-server mariadb-client
  python3-venv curl jq
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q || true
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
