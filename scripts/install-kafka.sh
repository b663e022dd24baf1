#!/usr/bin/env bash
# Installs what the Kafka tests need and prints the Kafka home directory:
#   scripts/install-kafka.sh  ->  ~/.cache/concertd/kafka-4.4.0
# - Debian packages: librdkafka-dev (the C++ adapter), kcat (scripts/kafka-start.sh's readiness
#   check and the smoke test), a Java 17 runtime and Maven.
# - The broker: org.apache.kafka:kafka_2.13 and its runtime jars from Maven Central (no Kafka
#   tarball can be fetched here) into HOME/libs, via scripts/kafka/pom.xml.
# - HOME/kafka.jsa: a class-data-sharing archive of one broker run, which halves broker start
#   time (class loading dominates it).
# Idempotent and cached: a second run only checks files. CONCERTD_KAFKA_VERSION (4.x) and
# CONCERTD_KAFKA_HOME override the version and the directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${CONCERTD_KAFKA_VERSION:-4.4.0}"
home="${CONCERTD_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/concertd/kafka-$version}"

packages=(librdkafka-dev kcat openjdk-17-jre-headless maven)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-kafka: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q >&2 || true
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >&2
fi

mkdir -p "$home"
# Two installs at once (parallel CI jobs) must not interleave their copies.
exec 9>"$home/.lock"
flock 9

if [ "$(cat "$home/libs/.complete" 2>/dev/null)" != "$version" ]; then
  echo "install-kafka: fetching kafka_2.13 $version from Maven Central" >&2
  rm -rf "$home/libs" "$home/kafka.jsa"
  if ! mvn -B -f "$here/kafka/pom.xml" -Dkafka.version="$version" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$home/libs" >"$home/mvn.log" 2>&1; then
    echo "install-kafka: mvn failed; the end of $home/mvn.log:" >&2
    tail -n 30 "$home/mvn.log" >&2
    exit 1
  fi
  # The stamp goes last: a run cut short is redone, not taken for an install.
  echo "$version" >"$home/libs/.complete"
fi

# The archive is only valid for this JVM build: redo it after a JDK upgrade (the JVM would
# otherwise ignore it with a warning and start slowly).
libjvm="$(dirname "$(readlink -f "$(command -v java)")")/../lib/server/libjvm.so"
if [ ! -e "$home/kafka.jsa" ] || [ "$libjvm" -nt "$home/kafka.jsa" ]; then
  echo "install-kafka: recording the broker's class-data-sharing archive" >&2
  rm -f "$home/kafka.jsa"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/concertd-kafka-cds.XXXXXX")"
  trap '"$here/kafka-stop.sh" "$tmp" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
  # One start, a produce and a consume (to load those code paths), a clean stop: the JVM writes
  # the archive as it exits.
  bootstrap="$(CONCERTD_KAFKA_HOME="$home" CONCERTD_KAFKA_CDS_DUMP="$home/kafka.jsa.tmp" \
    "$here/kafka-start.sh" "$tmp" 9>&-)"  # (the broker must not hold the lock)
  echo "k:v" | kcat -P -b "$bootstrap" -t cds -K: -X enable.idempotence=true 2>/dev/null
  kcat -C -b "$bootstrap" -t cds -o beginning -c 1 -e -q >/dev/null 2>&1 || true
  # Writing the archive takes the JVM 5-30 s on 2 busy cores: do not SIGKILL it after 30 s.
  CONCERTD_KAFKA_STOP_TIMEOUT_SECONDS=300 "$here/kafka-stop.sh" "$tmp"
  if [ -s "$home/kafka.jsa.tmp" ]; then
    mv "$home/kafka.jsa.tmp" "$home/kafka.jsa"
  else
    echo "install-kafka: no archive was written; brokers will start without one" >&2
    : >"$home/kafka.jsa"  # empty: not tried again until the JDK changes
  fi
fi
echo "$home"
