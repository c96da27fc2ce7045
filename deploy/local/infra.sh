#!/usr/bin/env bash
# The whole local infrastructure (PostgreSQL + Kafka) without Docker.
#
#   deploy/local/infra.sh up | down | status | env
#   eval "$(deploy/local/infra.sh env)"     # export the addresses into this shell
#
# Takes the same environment as postgres.sh and kafka.sh (OMS_STATE_DIR, PG_PORT,
# KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_PARTITIONS, PYTHON, ...). KAFKA_BROKERS=3
# selects Kafka's three-node cluster (replication factor 3, min.insync.replicas 2):
#
#   KAFKA_BROKERS=3 deploy/local/infra.sh up      # and the same setting for status/env
#
# `down` stops whichever Kafka this state dir runs, one broker or three.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG="$HERE/postgres.sh"
KAFKA="$HERE/kafka.sh"

cmd_up() {
  # The two are independent, so they start in parallel (the JVM dominates). Progress
  # (stderr) streams live; the address lines (stdout) are printed at the end, in order.
  local out pg_rc=0 kafka_rc=0 pg_pid kafka_pid
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' RETURN
  "$PG" start >"$out/pg" &
  pg_pid=$!
  "$KAFKA" start >"$out/kafka" &
  kafka_pid=$!
  wait "$pg_pid" || pg_rc=$?
  wait "$kafka_pid" || kafka_rc=$?
  if ((pg_rc != 0 || kafka_rc != 0)); then
    echo "infra: up failed (postgres exit $pg_rc, kafka exit $kafka_rc); see the messages above" >&2
    return 1
  fi
  cat "$out/pg" "$out/kafka"
}

cmd_down() {
  # Each is stopped even if the other fails.
  local rc=0
  "$KAFKA" stop || rc=1
  "$PG" stop || rc=1
  return "$rc"
}

cmd_status() {
  local rc=0
  "$PG" status || rc=$?
  "$KAFKA" status || rc=$?
  return "$rc"
}

cmd_env() {
  "$KAFKA" env
  "$PG" env
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
*)
  echo "usage: $0 up|down|status|env" >&2
  exit 2
  ;;
esac
