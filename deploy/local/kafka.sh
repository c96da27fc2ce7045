#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) without Docker: the official broker jars from
# Maven Central (deploy/local/pom.xml), run directly on the JVM.
#
#   deploy/local/kafka.sh start | stop | status | env
#
# Environment (defaults in brackets):
#   KAFKA_PORT [9092]  KAFKA_CONTROLLER_PORT [9093]  KAFKA_PARTITIONS [6]
#   OMS_STATE_DIR [<repo>/.local]  state: kafka/ (config, pid), kafka-data/, logs/kafka.log
#   OMS_CACHE_DIR [<repo>/.local]  jar cache shared by all instances: kafka/libs, m2/
#   PYTHON [<repo>/.venv/bin/python]  runs `-m contracts.catalogue` for the topic list
#   KAFKA_TOPICS  topic names (space, comma or newline separated) instead of the catalogue
#   KAFKA_HEAP_OPTS [-Xms256m -Xmx1g]  KAFKA_START_TIMEOUT [60]  KAFKA_STOP_TIMEOUT [30]
#   JAVA_HOME  which Java to use (else `java` on PATH; 17+ needed)
#
# Progress goes to stderr; `start` ends with KAFKA_BOOTSTRAP_SERVERS=... on stdout.
# Several instances run side by side given different OMS_STATE_DIR and ports.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-6}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
OMS_STATE_DIR="${OMS_STATE_DIR:-$REPO/.local}"
OMS_CACHE_DIR="${OMS_CACHE_DIR:-$REPO/.local}"
# Absolute paths: the pid check compares the broker's command line with them.
[[ "$OMS_STATE_DIR" == /* ]] || OMS_STATE_DIR="$PWD/$OMS_STATE_DIR"
[[ "$OMS_CACHE_DIR" == /* ]] || OMS_CACHE_DIR="$PWD/$OMS_CACHE_DIR"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"

POM="$HERE/pom.xml"
TEMPLATE="$HERE/kafka/server.properties"
LOG4J_CONFIG="$HERE/kafka/log4j2.yaml"
LIBS="$OMS_CACHE_DIR/kafka/libs"
LIBS_STAMP="$OMS_CACHE_DIR/kafka/libs.complete"   # holds the sha256 of the pom it was made from
M2="$OMS_CACHE_DIR/m2"

RUN_DIR="$OMS_STATE_DIR/kafka"
CONFIG="$RUN_DIR/server.properties"
PID_FILE="$RUN_DIR/kafka.pid"
LOCK_FILE="$RUN_DIR/.lock"
DATA_DIR="$OMS_STATE_DIR/kafka-data"
LOG_DIR="$OMS_STATE_DIR/logs"
LOG_FILE="$LOG_DIR/kafka.log"
OUT_FILE="$LOG_DIR/kafka.out"    # JVM stdout/stderr: crashes before log4j is up
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

# The broker's GC settings are those of Kafka's own kafka-run-class.sh.
BROKER_JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)
# Short-lived tool JVMs (storage format, topic fallback) start faster with these.
TOOL_JVM_OPTS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto -Xmx256m)

# Shell snippet: close all descriptors above stderr in the current shell.
# shellcheck disable=SC2016 # expanded later, by the inner shell
CLOSE_FDS='for fd in /proc/$$/fd/*; do fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null; done; '

say() { echo "kafka: $*" >&2; }
die() {
  echo "kafka: error: $*" >&2
  exit 1
}

for v in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_PARTITIONS KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
((KAFKA_PARTITIONS >= 1)) || die "KAFKA_PARTITIONS must be at least 1"

# --- helpers ---------------------------------------------------------------------------

# True while process $1 exists and is not a zombie awaiting its reaper.
alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Seconds since $1 (an $EPOCHREALTIME), with one decimal.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

find_java() {
  [[ -n "${JAVA:-}" ]] && return 0
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA="$(command -v java)"
  else
    die "java not found: install Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
  fi
  local version major
  version="$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${version%%.*}"
  [[ "$major" == 1 ]] && major="$(echo "$version" | cut -d. -f2)" # 1.8 style
  [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] ||
    die "Kafka 4 needs Java 17 or newer, but $JAVA is '$version': install Java 17+ or set JAVA_HOME"
}

# Fetch the broker jars once per pom.xml content. They are copied into a scratch
# folder and moved into place only when Maven succeeded, and the stamp is written
# last, so an interrupted download is simply done again.
resolve_libs() {
  local want
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [[ -d "$LIBS" && -f "$LIBS_STAMP" && "$(cat "$LIBS_STAMP")" == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found: Maven is needed to fetch the Kafka jars from Maven Central (e.g. apt-get install maven)"
  mkdir -p "$OMS_CACHE_DIR/kafka"
  # Another instance may be resolving right now (e.g. the test suite in parallel).
  exec 8>"$OMS_CACHE_DIR/kafka/.resolve.lock"
  flock 8
  if [[ -d "$LIBS" && -f "$LIBS_STAMP" && "$(cat "$LIBS_STAMP")" == "$want" ]]; then
    exec 8>&-
    return 0
  fi
  say "resolving the Kafka jars with Maven (Maven Central, cached in $M2) into $LIBS ..."
  rm -f "$LIBS_STAMP"
  local partial="$LIBS.partial"
  rm -rf "$partial"
  local mvn_log="$OMS_CACHE_DIR/kafka/mvn.log"
  mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$partial" -Dmaven.repo.local="$M2" >"$mvn_log" 2>&1 || {
    grep -E 'ERROR' "$mvn_log" | head -n 15 >&2
    die "Maven could not resolve $POM (network? full output in $mvn_log)"
  }
  rm -rf "$LIBS"
  mv "$partial" "$LIBS"
  echo "$want" >"$LIBS_STAMP"
  exec 8>&-
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_owner() {
  command -v ss >/dev/null 2>&1 && ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/^/    /' || true
}

# The pid from the pid file, if that process is alive and really is our broker (the
# command line names this state dir's config, so a recycled pid is never mistaken).
broker_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $CONFIG" || return 1
  echo "$pid"
}

# The client port the running broker of this state dir was configured with.
running_port() { sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:\([0-9]*\)$|\1|p' "$CONFIG" 2>/dev/null; }

tail_logs() {
  echo "---- last lines of $LOG_FILE ----" >&2
  tail -n 20 "$LOG_FILE" >&2 2>/dev/null || true
  if [[ -s "$OUT_FILE" ]]; then
    echo "---- last lines of $OUT_FILE ----" >&2
    tail -n 10 "$OUT_FILE" >&2
  fi
}

# Asked once per run; the answer decides between aiokafka and the Kafka CLI tools.
python_has_aiokafka() {
  if [[ -z "${HAS_AIOKAFKA:-}" ]]; then
    HAS_AIOKAFKA=no
    "$PYTHON" -c 'import aiokafka' >/dev/null 2>&1 && HAS_AIOKAFKA=yes
  fi
  [[ "$HAS_AIOKAFKA" == yes ]]
}

# Admin operations through aiokafka: one Python process for the whole topic list is
# ~0.5 s, where each kafka-topics JVM is ~2 s. Modes: probe | create.
kafka_admin() {
  "$PYTHON" - "$BOOTSTRAP" "$@" <<'PY'
import asyncio
import logging
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # we report failures ourselves

bootstrap, mode, partitions, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
ALREADY_EXISTS = 36


async def main() -> int:
    # A probe must not hang on a broker that accepts connections but is still starting.
    timeout_ms = 3_000 if mode == "probe" else 15_000
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())  # a metadata round trip
        if mode == "probe":
            return 0
        missing = [name for name in names if name not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(name, partitions, 1) for name in missing], timeout_ms=30_000
            )
            result = response.to_object()
            rows = result.get("topic_errors") or result.get("topics") or []
            failed = [
                (row.get("topic") or row.get("name"), row["error_code"], row.get("error_message"))
                for row in rows
                if row["error_code"] not in (0, ALREADY_EXISTS)
            ]
            if failed:
                for name, code, message in failed:
                    print(f"kafka: error: cannot create topic {name}: code {code} {message or ''}", file=sys.stderr)
                return 1
        print(
            f"kafka: topics ready: {len(missing)} created, {len(names) - len(missing)} already present",
            file=sys.stderr,
        )
        return 0
    finally:
        await admin.close()


try:
    sys.exit(asyncio.run(main()))
except Exception as error:  # a probe that fails just means "not yet"
    if mode != "probe":
        print(f"kafka: error: {type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(1)
PY
}

kafka_tool() {
  find_java
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -Dkafka.logs.dir="$LOG_DIR" -cp "$LIBS/*" "$@"
}

# Does the broker answer a metadata request?
broker_answers() {
  port_open "$KAFKA_PORT" || return 1
  if python_has_aiokafka; then
    kafka_admin probe 0
  else
    kafka_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$BOOTSTRAP" >/dev/null 2>&1
  fi
}

wait_until_ready() {
  local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while :; do
    if ! alive "$pid"; then
      tail_logs
      rm -f "$PID_FILE"
      die "the broker exited during startup; see $LOG_FILE and $OUT_FILE"
    fi
    broker_answers && return 0
    if ((SECONDS >= deadline)); then
      tail_logs
      die "the broker (pid $pid) did not answer on $BOOTSTRAP within ${KAFKA_START_TIMEOUT}s; see $LOG_FILE (it is left running: kafka.sh stop)"
    fi
    sleep 0.3
  done
}

topic_names() {
  if [[ -n "${KAFKA_TOPICS:-}" ]]; then
    # shellcheck disable=SC2020 # commas and spaces both become newlines
    tr ', ' '\n\n' <<<"$KAFKA_TOPICS" | sed '/^$/d'
    return 0
  fi
  [[ -x "$PYTHON" ]] || command -v "$PYTHON" >/dev/null 2>&1 ||
    die "no Python at $PYTHON to read the topic catalogue: create the venv or set PYTHON (or KAFKA_TOPICS)"
  (cd "$REPO" && "$PYTHON" -m contracts.catalogue) ||
    die "'$PYTHON -m contracts.catalogue' failed, so no topics were created (the broker is running; fix it and run start again)"
}

create_topics() {
  local names
  names="$(topic_names)"
  [[ -n "$names" ]] || die "the topic list is empty"
  # shellcheck disable=SC2086 # $names: one topic name per word
  if python_has_aiokafka; then
    kafka_admin create "$KAFKA_PARTITIONS" $names ||
      die "topic creation failed; see $LOG_FILE"
  else
    # No aiokafka: one kafka-topics JVM per topic, a few at a time.
    find_java
    say "creating topics with kafka-topics (no aiokafka in $PYTHON; slower) ..."
    printf '%s\n' $names | xargs -P 4 -I{} "$JAVA" "${TOOL_JVM_OPTS[@]}" \
      -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" -cp "$LIBS/*" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
      --topic {} --partitions "$KAFKA_PARTITIONS" --replication-factor 1 >/dev/null ||
      die "topic creation failed; see $LOG_FILE"
    say "topics ready: $(wc -w <<<"$names") ensured"
  fi
}

write_config() {
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@PARTITIONS@|$KAFKA_PARTITIONS|g" \
    -e "s|@DATA_DIR@|$DATA_DIR|g" \
    "$TEMPLATE" >"$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"
}

# KRaft needs its log directory formatted once, with a cluster id, before first start.
format_storage() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  local cluster_id
  # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  say "formatting $DATA_DIR (cluster id $cluster_id)"
  mkdir -p "$DATA_DIR"
  local output
  output="$(kafka_tool kafka.tools.StorageTool format --config "$CONFIG" --cluster-id "$cluster_id" \
    --ignore-formatted 2>&1)" || {
    echo "$output" | grep -v '^[[:space:]]*at ' | head -n 10 >&2
    die "formatting $DATA_DIR failed (settings in $CONFIG)"
  }
}

launch() {
  # setsid + nohup: the broker gets its own session and survives the calling shell.
  # The inner shell closes every inherited descriptor (our lock, the caller's pipes:
  # a daemon holding them would block the next stop, or a caller reading our output),
  # writes its own pid and then becomes java, so the pid file is the broker's pid.
  : >"$OUT_FILE"
  # shellcheck disable=SC2016,SC2086 # $$ is the inner shell's; KAFKA_HEAP_OPTS is words
  nohup setsid bash -c "$CLOSE_FDS"'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    "$JAVA" $KAFKA_HEAP_OPTS "${BROKER_JVM_OPTS[@]}" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$LIBS/*" kafka.Kafka "$CONFIG" >>"$OUT_FILE" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do
    [[ -s "$PID_FILE" ]] && break
    sleep 0.05
  done
  [[ -s "$PID_FILE" ]] || die "could not launch java; see $OUT_FILE"
}

print_env() { echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"; }

# --- commands --------------------------------------------------------------------------

cmd_start() {
  local t0=$EPOCHREALTIME pid
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # One start/stop at a time per state dir.
  exec 9>"$LOCK_FILE"
  flock 9

  if pid="$(broker_pid)"; then
    local port
    port="$(running_port)"
    [[ "$port" == "$KAFKA_PORT" ]] ||
      die "the broker of $OMS_STATE_DIR already runs (pid $pid) on 127.0.0.1:$port, not $KAFKA_PORT; stop it first or use another OMS_STATE_DIR"
    if broker_answers; then
      say "already running (pid $pid) on $BOOTSTRAP"
    else
      say "pid $pid is running but not answering yet; waiting ..."
      wait_until_ready "$pid"
    fi
    # Cheap when nothing is missing, and picks up topics added to the catalogue since.
    create_topics
    print_env
    return 0
  fi
  rm -f "$PID_FILE"

  find_java
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $p on 127.0.0.1 is already taken by another process; stop it or choose other ports (KAFKA_PORT / KAFKA_CONTROLLER_PORT)
$(port_owner "$p")"
    fi
  done
  resolve_libs
  write_config
  format_storage

  say "starting the broker on $BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, log $LOG_FILE)"
  launch
  pid="$(cat "$PID_FILE")"
  wait_until_ready "$pid"
  say "broker ready (pid $pid) after $(elapsed "$t0")s"
  create_topics
  print_env
}

cmd_stop() {
  local pid i
  if [[ ! -d "$RUN_DIR" ]]; then
    say "not running (state dir $OMS_STATE_DIR)"
    return 0
  fi
  exec 9>"$LOCK_FILE"
  flock 9
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    say "not running (state dir $OMS_STATE_DIR)"
    return 0
  fi
  # SIGTERM runs Kafka's orderly shutdown (flushes logs, writes the clean-shutdown
  # marker, so the next start skips log recovery).
  say "stopping the broker (pid $pid) ..."
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < KAFKA_STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    say "still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

cmd_status() {
  local pid
  if pid="$(broker_pid)"; then
    # Report the instance as it runs, whatever KAFKA_PORT says now.
    KAFKA_PORT="$(running_port)"
    BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
    if broker_answers; then
      echo "kafka: running (pid $pid) on $BOOTSTRAP, state $OMS_STATE_DIR"
      return 0
    fi
    echo "kafka: process $pid is up but $BOOTSTRAP does not answer (starting, or unhealthy: see $LOG_FILE)"
    return 1
  fi
  echo "kafka: not running (state $OMS_STATE_DIR)"
  return 3
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) echo "export $(print_env)" ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
