#!/usr/bin/env bash
# Local Apache Kafka (KRaft) without Docker: the official broker jars from Maven Central
# (deploy/local/pom.xml), run directly on the JVM. One broker by default; with
# KAFKA_BROKERS=3 a cluster of three nodes (each broker and controller) with replication
# factor 3 and min.insync.replicas 2, so any one node may fail without losing a write.
#
#   deploy/local/kafka.sh start | stop [--hard] | status | env
#   deploy/local/kafka.sh stop-node N [--hard] | start-node N     (KAFKA_BROKERS=3, N = 1..3)
#
# `--hard` sends SIGKILL instead of Kafka's orderly shutdown (for fault tests).
#
# Environment (defaults in brackets):
#   KAFKA_BROKERS [1]  1, or 3 for the three-node cluster
#   KAFKA_PORT [9092]  KAFKA_CONTROLLER_PORT [9093]  KAFKA_PARTITIONS [6]
#     Node N of the cluster listens on KAFKA_PORT+2(N-1) and KAFKA_CONTROLLER_PORT+2(N-1):
#     by default clients 9092, 9094, 9096 and controllers 9093, 9095, 9097.
#   OMS_STATE_DIR [<repo>/.local]  state: kafka/ (config, pid), kafka-data/, logs/kafka.log;
#     the cluster's: kafka-cluster/node-N/ (config, pid), kafka-cluster-data/node-N/,
#     logs/kafka-node-N/kafka.log
#   OMS_CACHE_DIR [<repo>/.local]  jar cache shared by all instances: kafka/libs, m2/
#   PYTHON [<repo>/.venv/bin/python]  runs `-m contracts.catalogue` for the topic list
#   KAFKA_TOPICS  topic names (space, comma or newline separated) instead of the catalogue
#   KAFKA_HEAP_OPTS [-Xms256m -Xmx1g; per node of the cluster -Xms128m -Xmx512m]
#   KAFKA_START_TIMEOUT [60; cluster 120]  KAFKA_STOP_TIMEOUT [30]
#   JAVA_HOME  which Java to use (else `java` on PATH; 17+ needed)
#
# Progress goes to stderr; `start` ends with KAFKA_BOOTSTRAP_SERVERS=... on stdout (the
# three addresses, comma separated, for the cluster). Several instances run side by side
# given different OMS_STATE_DIR and ports.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

KAFKA_BROKERS="${KAFKA_BROKERS:-1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-6}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
OMS_STATE_DIR="${OMS_STATE_DIR:-$REPO/.local}"
OMS_CACHE_DIR="${OMS_CACHE_DIR:-$REPO/.local}"
# Absolute paths: the pid check compares the broker's command line with them.
[[ "$OMS_STATE_DIR" == /* ]] || OMS_STATE_DIR="$PWD/$OMS_STATE_DIR"
[[ "$OMS_CACHE_DIR" == /* ]] || OMS_CACHE_DIR="$PWD/$OMS_CACHE_DIR"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"

POM="$HERE/pom.xml"
LOG4J_CONFIG="$HERE/kafka/log4j2.yaml"
LIBS="$OMS_CACHE_DIR/kafka/libs"
LIBS_STAMP="$OMS_CACHE_DIR/kafka/libs.complete"   # holds the sha256 of the pom it was made from
M2="$OMS_CACHE_DIR/m2"
LOG_DIR="$OMS_STATE_DIR/logs"

say() { echo "kafka: $*" >&2; }
die() {
  echo "kafka: error: $*" >&2
  exit 1
}

for v in KAFKA_BROKERS KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_PARTITIONS KAFKA_STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
((KAFKA_PARTITIONS >= 1)) || die "KAFKA_PARTITIONS must be at least 1"

# Node n (1-based) of the cluster listens on these ports; the single broker is node 1.
node_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
node_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }

case "$KAFKA_BROKERS" in
1)
  CLUSTER=no
  TEMPLATE="$HERE/kafka/server.properties"
  RUN_ROOT="$OMS_STATE_DIR/kafka"
  REPLICATION=1
  KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
  KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
  ;;
3)
  CLUSTER=yes
  TEMPLATE="$HERE/kafka/cluster.properties"
  RUN_ROOT="$OMS_STATE_DIR/kafka-cluster"
  REPLICATION=3
  # Three JVMs share the machine: each gets less than the single broker.
  KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
  # Three JVMs starting at once on a small machine, plus the quorum's first election.
  KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
  ;;
*) die "KAFKA_BROKERS must be 1 or 3, got '$KAFKA_BROKERS'" ;;
esac
[[ "$KAFKA_START_TIMEOUT" =~ ^[0-9]+$ ]] || die "KAFKA_START_TIMEOUT must be a number, got '$KAFKA_START_TIMEOUT'"
NODES=$(seq "$KAFKA_BROKERS")
LOCK_FILE="$RUN_ROOT/.lock"
CLUSTER_ID_FILE="$RUN_ROOT/cluster.id"

ALL_PORTS=()
for n in $NODES; do ALL_PORTS+=("$(node_port "$n")" "$(node_controller_port "$n")"); done
[[ "$(printf '%s\n' "${ALL_PORTS[@]}" | sort -u | wc -l)" == "${#ALL_PORTS[@]}" ]] ||
  die "KAFKA_PORT and KAFKA_CONTROLLER_PORT give clashing ports (${ALL_PORTS[*]}); with KAFKA_BROKERS=3 node N uses KAFKA_PORT+2(N-1) and KAFKA_CONTROLLER_PORT+2(N-1)"
for p in "${ALL_PORTS[@]}"; do ((p < 65536)) || die "port $p is out of range"; done

BOOTSTRAP="$(for n in $NODES; do echo "127.0.0.1:$(node_port "$n")"; done | paste -sd, -)"

# Where each node keeps its things. The single broker keeps the layout it always had.
node_run_dir() { if [[ $CLUSTER == yes ]]; then echo "$RUN_ROOT/node-$1"; else echo "$RUN_ROOT"; fi; }
node_config() { echo "$(node_run_dir "$1")/server.properties"; }
node_pid_file() { echo "$(node_run_dir "$1")/kafka.pid"; }
node_data_dir() {
  if [[ $CLUSTER == yes ]]; then echo "$OMS_STATE_DIR/kafka-cluster-data/node-$1"; else echo "$OMS_STATE_DIR/kafka-data"; fi
}
node_log_dir() { if [[ $CLUSTER == yes ]]; then echo "$LOG_DIR/kafka-node-$1"; else echo "$LOG_DIR"; fi; }
node_log_file() { echo "$(node_log_dir "$1")/kafka.log"; }
node_out_file() { echo "$(node_log_dir "$1")/kafka.out"; } # JVM stdout/stderr: crashes before log4j is up
node_name() { if [[ $CLUSTER == yes ]]; then echo "node $1"; else echo "the broker"; fi; }

# The broker's GC settings are those of Kafka's own kafka-run-class.sh.
BROKER_JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)
# Short-lived tool JVMs (storage format, topic fallback) start faster with these.
TOOL_JVM_OPTS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto -Xmx256m)

# Shell snippet: close all descriptors above stderr in the current shell.
# shellcheck disable=SC2016 # expanded later, by the inner shell
CLOSE_FDS='for fd in /proc/$$/fd/*; do fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null; done; '

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

# The pid of node $1 from its pid file, if that process is alive and really is our
# broker (the command line names this state dir's config, so a recycled pid is never
# mistaken).
node_pid() {
  local pid pid_file
  pid_file="$(node_pid_file "$1")"
  [[ -f "$pid_file" ]] || return 1
  pid="$(cat "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $(node_config "$1")" || return 1
  echo "$pid"
}

# The client port the running node $1 of this state dir was configured with.
running_port() {
  sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:\([0-9]*\)$|\1|p' "$(node_config "$1")" 2>/dev/null
}

tail_logs() {
  local log_file out_file
  log_file="$(node_log_file "$1")"
  out_file="$(node_out_file "$1")"
  echo "---- last lines of $log_file ----" >&2
  tail -n 20 "$log_file" >&2 2>/dev/null || true
  if [[ -s "$out_file" ]]; then
    echo "---- last lines of $out_file ----" >&2
    tail -n 10 "$out_file" >&2
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
# ~0.5 s, where each kafka-topics JVM is ~2 s. Modes:
#   probe BOOTSTRAP                           the node answers a metadata request
#   brokers BOOTSTRAP N                       the cluster's metadata lists N brokers or more
#   create BOOTSTRAP PARTITIONS REPLICAS NAME...
kafka_admin() {
  "$PYTHON" - "$@" <<'PY'
import asyncio
import logging
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # we report failures ourselves

mode, bootstrap, arguments = sys.argv[1], sys.argv[2], sys.argv[3:]
ALREADY_EXISTS = 36


async def main() -> int:
    # A probe must not hang on a broker that accepts connections but is still starting.
    timeout_ms = 15_000 if mode == "create" else 3_000
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        if mode == "brokers":
            brokers = (await admin.describe_cluster())["brokers"]
            return 0 if len(brokers) >= int(arguments[0]) else 1
        existing = set(await admin.list_topics())  # a metadata round trip
        if mode == "probe":
            return 0
        partitions, replicas, names = int(arguments[0]), int(arguments[1]), arguments[2:]
        missing = [name for name in names if name not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(name, partitions, replicas) for name in missing], timeout_ms=30_000
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
    if mode == "create":
        print(f"kafka: error: {type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(1)
PY
}

kafka_tool() {
  find_java
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -Dkafka.logs.dir="$LOG_DIR" -cp "$LIBS/*" "$@"
}

# Does node $1 (as it is configured, or as it runs) answer a metadata request?
node_answers() {
  local port="${2:-$(node_port "$1")}"
  port_open "$port" || return 1
  if python_has_aiokafka; then
    kafka_admin probe "127.0.0.1:$port"
  else
    kafka_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$port" >/dev/null 2>&1
  fi
}

# Does the cluster's metadata list every node? Topics with replication factor 3 can be
# created only once three brokers are registered.
all_brokers_registered() {
  [[ $CLUSTER == yes ]] || return 0
  python_has_aiokafka || return 0 # without aiokafka, kafka-topics reports it instead
  kafka_admin brokers "$BOOTSTRAP" "$KAFKA_BROKERS"
}

# Waits until every node named in $@ answers (and, for the cluster, all are registered).
wait_until_ready() {
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT)) n pid waiting
  while :; do
    waiting=()
    for n in "$@"; do
      pid="$(cat "$(node_pid_file "$n")" 2>/dev/null || true)"
      if [[ -z "$pid" ]] || ! alive "$pid"; then
        tail_logs "$n"
        rm -f "$(node_pid_file "$n")"
        die "$(node_name "$n") exited during startup; see $(node_log_file "$n") and $(node_out_file "$n")"
      fi
      node_answers "$n" || waiting+=("$n")
    done
    ((${#waiting[@]} == 0)) && all_brokers_registered && return 0
    if ((SECONDS >= deadline)); then
      for n in "${waiting[@]}"; do tail_logs "$n"; done
      die "not ready within ${KAFKA_START_TIMEOUT}s on $BOOTSTRAP (waiting for $(
        ((${#waiting[@]})) && echo "node ${waiting[*]}" || echo "all brokers to register"
      )); see the logs under $LOG_DIR (left running: kafka.sh stop)"
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
    kafka_admin create "$BOOTSTRAP" "$KAFKA_PARTITIONS" "$REPLICATION" $names ||
      die "topic creation failed; see the logs under $LOG_DIR"
  else
    # No aiokafka: one kafka-topics JVM per topic, a few at a time.
    find_java
    say "creating topics with kafka-topics (no aiokafka in $PYTHON; slower) ..."
    printf '%s\n' $names | xargs -P 4 -I{} "$JAVA" "${TOOL_JVM_OPTS[@]}" \
      -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" -cp "$LIBS/*" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
      --topic {} --partitions "$KAFKA_PARTITIONS" --replication-factor "$REPLICATION" >/dev/null ||
      die "topic creation failed; see the logs under $LOG_DIR"
    say "topics ready: $(wc -w <<<"$names") ensured"
  fi
}

write_config() {
  local n="$1" config voters="" m
  config="$(node_config "$n")"
  for m in $NODES; do voters+="${voters:+,}$m@127.0.0.1:$(node_controller_port "$m")"; done
  mkdir -p "$(node_run_dir "$n")" "$(node_log_dir "$n")"
  sed -e "s|@KAFKA_PORT@|$(node_port "$n")|g" \
    -e "s|@CONTROLLER_PORT@|$(node_controller_port "$n")|g" \
    -e "s|@NODE_ID@|$n|g" \
    -e "s|@VOTERS@|$voters|g" \
    -e "s|@PARTITIONS@|$KAFKA_PARTITIONS|g" \
    -e "s|@DATA_DIR@|$(node_data_dir "$n")|g" \
    "$TEMPLATE" >"$config.tmp"
  mv "$config.tmp" "$config"
}

# The cluster id: one per state dir and mode, shared by every node of the cluster.
cluster_id() {
  if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
    # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' >"$CLUSTER_ID_FILE"
  fi
  cat "$CLUSTER_ID_FILE"
}

# KRaft needs each log directory formatted once, with the cluster id, before first start.
format_storage() {
  local n="$1" data_dir id output
  data_dir="$(node_data_dir "$n")"
  [[ -f "$data_dir/meta.properties" ]] && return 0
  id="$(cluster_id)"
  say "formatting $data_dir (cluster id $id)"
  mkdir -p "$data_dir"
  output="$(kafka_tool kafka.tools.StorageTool format --config "$(node_config "$n")" \
    --cluster-id "$id" --ignore-formatted 2>&1)" || {
    echo "$output" | grep -v '^[[:space:]]*at ' | head -n 10 >&2
    die "formatting $data_dir failed (settings in $(node_config "$n"))"
  }
}

launch() {
  local n="$1" pid_file out_file
  pid_file="$(node_pid_file "$n")"
  out_file="$(node_out_file "$n")"
  rm -f "$pid_file"
  # setsid + nohup: the broker gets its own session and survives the calling shell.
  # The inner shell closes every inherited descriptor (our lock, the caller's pipes:
  # a daemon holding them would block the next stop, or a caller reading our output),
  # writes its own pid and then becomes java, so the pid file is the broker's pid.
  : >"$out_file"
  # shellcheck disable=SC2016,SC2086 # $$ is the inner shell's; KAFKA_HEAP_OPTS is words
  nohup setsid bash -c "$CLOSE_FDS"'echo $$ >"$0"; exec "$@"' "$pid_file" \
    "$JAVA" $KAFKA_HEAP_OPTS "${BROKER_JVM_OPTS[@]}" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$(node_log_dir "$n")" \
    -cp "$LIBS/*" kafka.Kafka "$(node_config "$n")" >>"$out_file" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do
    [[ -s "$pid_file" ]] && break
    sleep 0.05
  done
  [[ -s "$pid_file" ]] || die "could not launch java; see $out_file"
}

# Writes the config, formats and launches node $1 unless it runs; the caller waits.
start_node_process() {
  local n="$1" pid port p
  if pid="$(node_pid "$n")"; then
    port="$(running_port "$n")"
    [[ "$port" == "$(node_port "$n")" ]] ||
      die "$(node_name "$n") of $OMS_STATE_DIR already runs (pid $pid) on 127.0.0.1:$port, not $(node_port "$n"); stop it first or use another OMS_STATE_DIR"
    say "$(node_name "$n") is already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  for p in "$(node_port "$n")" "$(node_controller_port "$n")"; do
    if port_open "$p"; then
      die "port $p on 127.0.0.1 is already taken by another process; stop it or choose other ports (KAFKA_PORT / KAFKA_CONTROLLER_PORT)
$(port_owner "$p")"
    fi
  done
  write_config "$n"
  format_storage "$n"
  say "starting $(node_name "$n") on 127.0.0.1:$(node_port "$n") (controller 127.0.0.1:$(node_controller_port "$n"), log $(node_log_file "$n"))"
  launch "$n"
}

# Sends node $1 SIGTERM (Kafka's orderly shutdown: flushes logs, writes the
# clean-shutdown marker, so the next start skips log recovery) or, with $2 = hard,
# SIGKILL (a crash, for fault tests). Returns at once; prints the pid signalled, if any.
signal_node() {
  local n="$1" mode="$2" pid
  if ! pid="$(node_pid "$n")"; then
    rm -f "$(node_pid_file "$n")"
    return 0
  fi
  if [[ "$mode" == hard ]]; then
    say "killing $(node_name "$n") (pid $pid) with SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  else
    say "stopping $(node_name "$n") (pid $pid) ..."
    kill -TERM "$pid" 2>/dev/null || true
  fi
  echo "$pid"
}

# Waits for the pids in $@ to exit; SIGKILL for any still there after KAFKA_STOP_TIMEOUT.
await_exit() {
  local pid i running
  for ((i = 0; i < KAFKA_STOP_TIMEOUT * 10; i++)); do
    running=0
    for pid in "$@"; do alive "$pid" && running=1; done
    ((running)) || return 0
    sleep 0.1
  done
  for pid in "$@"; do
    if alive "$pid"; then
      say "pid $pid still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "$@"; do while alive "$pid"; do sleep 0.1; done; done
}

# One start/stop at a time per state dir and mode.
lock() {
  mkdir -p "$RUN_ROOT" "$LOG_DIR"
  exec 9>"$LOCK_FILE"
  flock 9
}

print_env() { echo "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP"; }

# Reads the optional --hard after stop and stop-node into STOP_MODE (hard or clean).
parse_stop_mode() {
  STOP_MODE=clean
  case "${1:-}" in
  "") ;;
  --hard) STOP_MODE=hard ;;
  *) die "unknown option '$1' (only --hard)" ;;
  esac
}

check_node() {
  [[ $CLUSTER == yes ]] || die "stop-node and start-node need the three-broker cluster (KAFKA_BROKERS=3)"
  [[ "${1:-}" =~ ^[1-3]$ ]] || die "name a node: 1, 2 or 3 (got '${1:-}')"
}

# --- commands --------------------------------------------------------------------------

cmd_start() {
  local t0=$EPOCHREALTIME n pids=()
  lock
  find_java
  resolve_libs
  # A majority of the controllers must run to elect a leader: all nodes start together.
  for n in $NODES; do start_node_process "$n"; done
  # shellcheck disable=SC2086 # $NODES: one node number per word
  wait_until_ready $NODES
  for n in $NODES; do pids+=("$(node_pid "$n")"); done
  say "ready (pid ${pids[*]}) on $BOOTSTRAP after $(elapsed "$t0")s"
  # Cheap when nothing is missing, and picks up topics added to the catalogue since.
  create_topics
  print_env
}

cmd_stop() {
  parse_stop_mode "${1:-}"
  if [[ ! -d "$RUN_ROOT" ]]; then
    say "not running (state dir $OMS_STATE_DIR)"
    stop_other_mode
    return 0
  fi
  lock
  local n pid pids=()
  # All at once: the nodes' controlled shutdowns need the controller quorum, which
  # would be lost midway if the nodes went one after another.
  for n in $NODES; do
    pid="$(signal_node "$n" "$STOP_MODE")"
    [[ -n "$pid" ]] && pids+=("$pid")
  done
  if ((${#pids[@]} == 0)); then
    say "not running (state dir $OMS_STATE_DIR)"
  else
    await_exit "${pids[@]}"
    for n in $NODES; do rm -f "$(node_pid_file "$n")"; done
    say "stopped"
  fi
  stop_other_mode
}

# `stop` leaves no broker of this state dir behind, even one started in the other mode
# (KAFKA_BROKERS set differently then).
stop_other_mode() {
  [[ -z "${KAFKA_STOP_OTHER_MODE:-}" ]] || return 0 # this is already the other mode's stop
  local other=3 other_run_root="$OMS_STATE_DIR/kafka-cluster"
  if [[ $CLUSTER == yes ]]; then
    other=1
    other_run_root="$OMS_STATE_DIR/kafka"
  fi
  [[ -d "$other_run_root" ]] || return 0
  local flag=()
  [[ $STOP_MODE == hard ]] && flag=(--hard)
  KAFKA_STOP_OTHER_MODE=1 KAFKA_BROKERS=$other KAFKA_HEAP_OPTS='' KAFKA_START_TIMEOUT='' \
    bash "${BASH_SOURCE[0]}" stop "${flag[@]}" 2>&1 | { grep -v 'not running' >&2 || true; }
}

cmd_stop_node() {
  check_node "${1:-}"
  local n="$1" pid
  parse_stop_mode "${2:-}"
  lock
  pid="$(signal_node "$n" "$STOP_MODE")"
  if [[ -z "$pid" ]]; then
    say "node $n not running"
    return 0
  fi
  await_exit "$pid"
  rm -f "$(node_pid_file "$n")"
  say "node $n stopped"
}

cmd_start_node() {
  check_node "${1:-}"
  local n="$1" t0=$EPOCHREALTIME
  [[ -f "$(node_data_dir "$n")/meta.properties" ]] ||
    die "the cluster of $OMS_STATE_DIR was never started: run 'KAFKA_BROKERS=3 kafka.sh start' first"
  lock
  find_java
  resolve_libs
  start_node_process "$n"
  wait_until_ready "$n"
  say "node $n ready (pid $(node_pid "$n")) after $(elapsed "$t0")s"
}

cmd_status() {
  local n pid up=0 answering=0 port prefix=""
  for n in $NODES; do
    [[ $CLUSTER == yes ]] && prefix="node $n "
    if pid="$(node_pid "$n")"; then
      up=$((up + 1))
      # Report the instance as it runs, whatever KAFKA_PORT says now.
      port="$(running_port "$n")"
      if node_answers "$n" "$port"; then
        answering=$((answering + 1))
        echo "kafka: ${prefix}running (pid $pid) on 127.0.0.1:$port, state $OMS_STATE_DIR"
      else
        echo "kafka: ${prefix}process $pid is up but 127.0.0.1:$port does not answer (starting, or unhealthy: see $(node_log_file "$n"))"
      fi
    elif [[ $CLUSTER == yes ]]; then
      echo "kafka: node $n not running (state $OMS_STATE_DIR)"
    fi
  done
  ((up > 0)) || {
    [[ $CLUSTER == yes ]] || echo "kafka: not running (state $OMS_STATE_DIR)"
    return 3
  }
  ((answering == KAFKA_BROKERS)) || return 1
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop "${2:-}" ;;
stop-node) cmd_stop_node "${2:-}" "${3:-}" ;;
start-node) cmd_start_node "${2:-}" ;;
status) cmd_status ;;
env) echo "export $(print_env)" ;;
*)
  echo "usage: $0 start | stop [--hard] | status | env | stop-node N [--hard] | start-node N" >&2
  exit 2
  ;;
esac
