#!/usr/bin/env bash
# Installs what `make bench` needs beyond scripts/install-deps.sh (which brings postgresql — and
# with it pgbench — redis-server and redis-tools). Idempotent: fast when all is there.
#   nginx-light  the static-file reference of the seat-map read
#   gnuplot-nox  the chart docs/benchmarks.png
#   wrk          closed-model throughput (HTTP, with Lua scripts)
#   vegeta       open-model (constant-rate) latency, from the Go module proxy, into build/bench/bin
#   loadgen      bench/loadgen (Go, stdlib only), into build/bench/loadgen
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
packages=(nginx-light gnuplot-nox wrk redis-tools postgresql-15)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-bench-deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q || true
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# (The bench runs nginx as its own process on a free port; a system nginx is left alone.)
[ -x /usr/lib/postgresql/15/bin/pgbench ] || { echo "install-bench-deps: pgbench missing" >&2; exit 1; }

command -v go >/dev/null || { echo "install-bench-deps: Go is needed (vegeta, bench/loadgen)" >&2; exit 1; }
mkdir -p "$root/build/bench/bin"
vegeta_version=v12.13.0
# (go install sets no version string: read the module version from the build info instead)
if ! go version -m "$root/build/bench/bin/vegeta" 2>/dev/null | grep -q "vegeta/v12[[:space:]]*$vegeta_version"; then
  echo "install-bench-deps: go install vegeta@$vegeta_version"
  GOBIN="$root/build/bench/bin" GOFLAGS=-mod=mod go install "github.com/tsenart/vegeta/v12@$vegeta_version"
fi

# bench/loadgen: rebuilt when a source is newer than the binary.
if [ -d "$root/bench/loadgen" ]; then
  out="$root/build/bench/loadgen"
  if [ ! -x "$out" ] || [ -n "$(find "$root/bench/loadgen" -newer "$out" -name '*.go' -o -newer "$out" -name go.mod | head -1)" ]; then
    echo "install-bench-deps: building bench/loadgen"
    (cd "$root/bench/loadgen" && go build -o "$out" .)
  fi
fi
