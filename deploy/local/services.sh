#!/usr/bin/env bash
# Starts and stops the OMS services as background processes, one OS process each.
#   deploy/local/services.sh start|stop|status SERVICE...
# SERVICE is one of the five services, `operations` (the read side and dashboard, port
# 8006), or `mail`: a local SMTP sink on 127.0.0.1:1025
# that writes every message the notification service sends to its log.
# Logs: $OMS_STATE_DIR/logs/<service>.log; pid files: $OMS_STATE_DIR/run/<service>.pid.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${OMS_STATE_DIR:-$REPO/.local}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
RUN_DIR="$STATE_DIR/run"
LOG_DIR="$STATE_DIR/logs"
mkdir -p "$RUN_DIR" "$LOG_DIR"

declare -A PORTS=([order]=8001 [inventory]=8002 [fulfilment]=8003 [returns]=8004 [notification]=8005
  [operations]=8006
  [mail]=1025)

pid_of() { local f="$RUN_DIR/$1.pid"; [[ -f $f ]] && cat "$f" || true; }
alive() { local pid; pid="$(pid_of "$1")"; [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }
port_of() { local var="OMS_${1^^}_HTTP_PORT"; echo "${!var:-${PORTS[$1]}}"; }

start_one() {
  local service=$1 port; port="$(port_of "$service")"
  if alive "$service"; then echo "$service: already running (pid $(pid_of "$service"))"; return; fi
  local -a command=("$PYTHON" -m "services.$service")
  [[ $service == mail ]] && command=("$PYTHON" -u -m aiosmtpd -n -l "127.0.0.1:$port")
  OMS_HTTP_PORT="$port" setsid nohup "${command[@]}" >>"$LOG_DIR/$service.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$service.pid"
}

wait_ready() {
  local service=$1 port deadline=$((SECONDS + 60)); port="$(port_of "$service")"
  until answers "$service" "$port"; do
    if ! alive "$service" || ((SECONDS > deadline)); then
      echo "$service did not come up on port $port; its log is $LOG_DIR/$service.log:" >&2
      tail -n 20 "$LOG_DIR/$service.log" >&2
      exit 1
    fi
    sleep 0.3
  done
  echo "$service: up on http://127.0.0.1:$port (pid $(pid_of "$service"))"
}

answers() {
  if [[ $1 == mail ]]; then (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null
  else curl -fs "http://127.0.0.1:$2/health" >/dev/null; fi
}

stop_one() {
  local service=$1 pid; pid="$(pid_of "$service")"
  if ! alive "$service"; then rm -f "$RUN_DIR/$service.pid"; return; fi
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$RUN_DIR/$service.pid"
  echo "$service: stopped"
}

command=${1:-}; shift || true
case "$command" in
  start) for s in "$@"; do start_one "$s"; done; for s in "$@"; do wait_ready "$s"; done ;;
  stop) for s in "$@"; do stop_one "$s"; done ;;
  status) for s in "$@"; do
      if alive "$s"; then echo "$s: running (pid $(pid_of "$s"), port $(port_of "$s"))"
      else echo "$s: stopped"; fi
    done ;;
  *) echo "usage: $0 start|stop|status SERVICE..." >&2; exit 2 ;;
esac
