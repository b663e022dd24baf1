#!/usr/bin/env bash
# Starts a throwaway single-node Kafka (KRaft: broker and controller in one JVM) for tests and
# prints its bootstrap address once it answers a metadata request:
#   scripts/kafka-start.sh DIR [PORT]  ->  127.0.0.1:PORT
# It listens on 127.0.0.1 only: the broker on PORT, the controller on another free port. DIR
# holds the log dirs (DIR/data, formatted on first use), DIR/server.properties, DIR/server.log
# and DIR/kafka.pid. Running it again on the same DIR restarts that broker with its topics and
# offsets (pass the same PORT to keep the address; the controller port is kept too). Without
# PORT, a free one is picked. Stop with scripts/kafka-stop.sh DIR [term|kill].
#
# Test settings: replication factor 1 everywhere, one partition for the internal topics, topics
# auto-created with 3 partitions, no fsync (Kafka's default), a small heap.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [PORT]" >&2
  exit 2
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
port="${2:-}"
here="$(cd "$(dirname "$0")" && pwd)"
version="${CONCERTD_KAFKA_VERSION:-4.4.0}"
home="${CONCERTD_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/concertd/kafka-$version}"
[ "$(cat "$home/libs/.complete" 2>/dev/null)" = "$version" ] ||
  "$here/install-kafka.sh" >/dev/null

"$here/kafka-stop.sh" "$dir"

# Serial GC, C1 only and a small heap: a test broker idles; it must start fast on 2 shared cores
# and stay small. The archive (install-kafka.sh) skips most class loading.
jvm=(java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$home/libs/*")
if [ -n "${CONCERTD_KAFKA_CDS_DUMP:-}" ]; then
  jvm+=(-XX:ArchiveClassesAtExit="$CONCERTD_KAFKA_CDS_DUMP")  # install-kafka.sh's recording run
elif [ -s "$home/kafka.jsa" ]; then
  jvm+=(-XX:SharedArchiveFile="$home/kafka.jsa")
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 40000))
}

running() {  # not exited (a zombie counts as exited)
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ "${stat##*) }" != Z* ]]
}

write_config() {  # PORT CONTROLLER_PORT
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$2
listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=PLAINTEXT://127.0.0.1:$1
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the restarted broker cannot register until its old session expires (default
# 9 s): a short session makes a crash-restart about as fast as a clean one.
broker.session.timeout.ms=2000
broker.heartbeat.interval.ms=500
# Fewer threads and a small compaction buffer (the default allocates 128 MiB of heap).
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=8388608
EOF
}

# The controller port goes with the data: keep it across restarts on the same DIR and PORT.
controller_port=""
if [ -n "$port" ] && [ -f "$dir/kafka.ports" ]; then
  read -r old_port old_controller_port <"$dir/kafka.ports" || true
  [ "$old_port" != "$port" ] || controller_port="$old_controller_port"
fi

# A picked port can be taken before the broker binds it (it then exits): try a few.
attempts=1
[ -n "$port" ] || attempts=5
deadline_s=$((SECONDS + ${CONCERTD_KAFKA_START_TIMEOUT_SECONDS:-90}))
for ((i = 0; i < attempts; i++)); do
  p="${port:-$(free_port)}"
  c="${controller_port:-$(free_port)}"
  [ "$c" != "$p" ] || c="$(free_port)"
  write_config "$p" "$c"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # A cluster id is 16 random bytes in URL-safe base64; Kafka's own never starts with '-'.
    cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    if ! "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$dir/server.properties" >>"$dir/server.log" 2>&1; then
      echo "kafka-start: formatting $dir/data failed; the end of $dir/server.log:" >&2
      tail -n 20 "$dir/server.log" >&2
      exit 1
    fi
  fi
  echo "$p $c" >"$dir/kafka.ports"
  echo "--- kafka-start.sh $(date -u +%FT%TZ) 127.0.0.1:$p controller $c" >>"$dir/server.log"
  # setsid: its own session, so a test's Ctrl-C or process-group kill does not reach it.
  setsid "${jvm[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/server.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/kafka.pid"
  # The broker opens its port only once it is running; then a metadata request must name it
  # and every partition (after a restart) must have its leader back.
  while running "$pid" && ((SECONDS < deadline_s)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
        metadata="$(kcat -L -b "127.0.0.1:$p" -m 5 2>/dev/null)" &&
        grep -q "broker 1 at 127.0.0.1:$p" <<<"$metadata" &&
        ! grep -q 'leader -1' <<<"$metadata"; then
      echo "127.0.0.1:$p"
      exit 0
    fi
    sleep 0.1
  done
  "$here/kafka-stop.sh" "$dir" kill
  ((SECONDS < deadline_s)) || break
done
echo "kafka-start: Kafka did not start; the end of $dir/server.log:" >&2
tail -n 20 "$dir/server.log" >&2 || true
exit 1
