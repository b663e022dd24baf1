#!/usr/bin/env bash
# Runs the black-box end-to-end suite in every mode, one after the other: SQLite (the embedded
# default), PostgreSQL (a throwaway cluster the suite starts itself with scripts/pg-start.sh;
# every concertd it starts gets a fresh database in it), PostgreSQL + Redis (the same, and every
# concertd gets a throwaway redis-server too, scripts/redis-start.sh) and MariaDB (a throwaway
# MariaDB 10.11, scripts/mariadb-start.sh, a fresh database per concertd; issue 7).
#   scripts/test-e2e-all.sh [path/to/concertd] [extra pytest arguments...]
# Every run always happens; the exit code is non-zero when any failed. The last line adds up
# all runs ("e2e: N passed, N failed, N skipped").
# The Kafka tests (tests/e2e/test_kafka*.py, each on a broker of its own) run in the PostgreSQL
# mode only (CONCERTD_E2E_KAFKA=1), after scripts/install-kafka.sh (cached: seconds once done).
# CONCERTD_E2E_MARIADB_ALL=0 leaves the MariaDB run out (a machine without MariaDB).
# One mode only: CONCERTD_E2E_BACKEND=sqlite|postgres|postgres+redis|mariadb scripts/test-e2e.sh ...
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
backends=(sqlite postgres postgres+redis)
[ "${CONCERTD_E2E_MARIADB_ALL:-1}" = 0 ] || backends+=(mariadb)
status=0
passed=0 failed=0 skipped=0
summaries=()
kafka=1
if ! "$root/scripts/install-kafka.sh" >/dev/null; then
  echo "test-e2e-all: scripts/install-kafka.sh failed: the Kafka tests are skipped, the run fails" >&2
  kafka=0 status=1 failed=1
  summaries+=("kafka: install failed")
fi
for backend in "${backends[@]}"; do
  echo "=== e2e on $backend ==="
  log="$(mktemp)"
  started=$SECONDS
  with_kafka=0
  [ "$backend" != postgres ] || with_kafka="$kafka"
  CONCERTD_E2E_KAFKA="$with_kafka" CONCERTD_E2E_BACKEND="$backend" "$root/scripts/test-e2e.sh" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  took=$((SECONDS - started))
  # pytest's closing line, e.g. "1 failed, 373 passed, 5 skipped in 122.45s (0:02:02)"
  line="$(grep -E '^=* *[0-9]+ (passed|failed|skipped|errors?|deselected)' "$log" | tail -n 1 || true)"
  rm -f "$log"
  count() { grep -oE "[0-9]+ $1" <<<"$line" | head -n 1 | cut -d' ' -f1; }
  p="$(count passed)" f="$(count failed)" s="$(count skipped)" e="$(count 'errors?')"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
  skipped=$((skipped + ${s:-0}))
  if [ "$rc" -ne 0 ]; then
    status=1
    # a run that died before its closing line still counts as a failure
    [ -n "$line" ] || failed=$((failed + 1))
  fi
  summaries+=("$backend: ${line:-no summary (exit $rc)} [${took}s]")
done
echo "=== e2e per back end ==="
printf '%s\n' "${summaries[@]}"
echo "e2e: $passed passed, $failed failed, $skipped skipped"
exit "$status"
