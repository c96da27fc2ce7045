#!/usr/bin/env bash
# Local PostgreSQL without Docker: a private cluster (its own initdb, port and socket)
# run from the system's PostgreSQL binaries, with one database and role per service.
#
#   deploy/local/postgres.sh start | stop | status | env
#
# Environment (defaults in brackets):
#   PG_PORT [5432]  OMS_STATE_DIR [<repo>/.local]: postgres-data/, postgres-run/ (socket),
#   logs/postgres.log
#   PG_BIN [newest /usr/lib/postgresql/*/bin]  PG_OS_USER [postgres] (when run as root)
#   PG_START_TIMEOUT [60]  PG_STOP_TIMEOUT [30]
#
# Progress goes to stderr; `start` ends with the <SERVICE>_DATABASE_URL=... lines on stdout.
# Several instances run side by side given different OMS_STATE_DIR and PG_PORT.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

PG_PORT="${PG_PORT:-5432}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
PG_STOP_TIMEOUT="${PG_STOP_TIMEOUT:-30}"
OMS_STATE_DIR="${OMS_STATE_DIR:-$REPO/.local}"
# Absolute: PostgreSQL runs from another working directory.
[[ "$OMS_STATE_DIR" == /* ]] || OMS_STATE_DIR="$PWD/$OMS_STATE_DIR"

PG_DATA="$OMS_STATE_DIR/postgres-data"
PG_RUN="$OMS_STATE_DIR/postgres-run" # unix socket, private to this instance
LOG_DIR="$OMS_STATE_DIR/logs"
LOG_FILE="$LOG_DIR/postgres.log"
LOCK_FILE="$OMS_STATE_DIR/postgres.lock"

# Every service owns one database, created by this SQL; keep the two lists in step.
INIT_SQL="$REPO/deploy/compose/init-databases.sql"
SERVICES=(order inventory fulfilment returns notification operations)

say() { echo "postgres: $*" >&2; }
die() {
  echo "postgres: error: $*" >&2
  exit 1
}

for v in PG_PORT PG_START_TIMEOUT PG_STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done

# The postgres user may not be able to enter the caller's working directory.
cd /

# Shell snippet: close all descriptors above stderr, so the server does not keep our
# lock or the caller's pipes open for its whole life.
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

# PostgreSQL refuses to run as root, so root runs it as a system user; anyone else
# runs it as themselves.
if [[ $EUID -eq 0 ]]; then
  PG_OS_USER="${PG_OS_USER:-postgres}"
  as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
else
  PG_OS_USER="$(id -un)"
  as_pg() { "$@"; }
fi

ensure_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  say "creating system user $PG_OS_USER"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin "$PG_OS_USER"
}

find_pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/initdb" ]] || die "PG_BIN=$PG_BIN has no initdb"
    return 0
  fi
  local dir
  # Debian keeps the server binaries off PATH, one folder per major version.
  # shellcheck disable=SC2012 # version-numbered folder names
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then
    PG_BIN="$dir"
  elif command -v initdb >/dev/null 2>&1; then
    PG_BIN="$(dirname "$(command -v initdb)")"
  else
    return 1
  fi
}

install_postgres() {
  [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed: install it (sudo apt-get install postgresql) or set PG_BIN"
  command -v apt-get >/dev/null 2>&1 ||
    die "PostgreSQL is not installed and this is not a Debian-like system: install PostgreSQL 15+ and set PG_BIN"
  say "PostgreSQL not found; installing it with apt-get ..."
  # The package would otherwise create and start its own 'main' cluster on port 5432,
  # which is the port ours wants; this drop-in tells postgresql-common not to.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/oms-no-main-cluster.conf
  if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
    ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2; then
    die "apt-get install postgresql failed"
  fi
  find_pg_bin || die "PostgreSQL was installed but initdb is still not found; set PG_BIN"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_owner() {
  command -v ss >/dev/null 2>&1 && ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/^/    /' || true
}

# The postmaster's pid, if it is alive and serves this data directory.
server_pid() {
  local pid
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
  pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$PG_DATA" || return 1
  echo "$pid"
}

# The port the running server was started with (line 4 of postmaster.pid).
running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }

accepting() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

tail_log() {
  echo "---- last lines of $LOG_FILE ----" >&2
  tail -n 20 "$LOG_FILE" >&2 2>/dev/null || true
}

psql_admin() {
  # Over this instance's own socket as the superuser (trusted there: the socket
  # directory is private to the server's OS user).
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres "$@"
}

prepare_dirs() {
  ensure_os_user
  mkdir -p "$PG_DATA" "$PG_RUN" "$LOG_DIR"
  touch "$LOG_FILE"
  if [[ $EUID -eq 0 ]]; then
    chown "$PG_OS_USER:" "$PG_DATA" "$PG_RUN" "$LOG_FILE"
  fi
  chmod 700 "$PG_DATA" "$PG_RUN"
  # Every parent must be enterable by the server's user: say so plainly if not.
  as_pg test -w "$PG_DATA" -a -w "$PG_RUN" -a -w "$LOG_FILE" ||
    die "user $PG_OS_USER cannot reach $OMS_STATE_DIR (a parent directory lacks o+x?); choose another OMS_STATE_DIR, e.g. /var/tmp/oms"
  # Unix socket paths are limited to 107 bytes.
  local socket="$PG_RUN/.s.PGSQL.$PG_PORT"
  ((${#socket} < 100)) || die "the socket path $socket is too long for a unix socket; use a shorter OMS_STATE_DIR"
}

init_cluster() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
  local locale=(--no-locale)
  locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$' && locale=(--locale=C.UTF-8)
  say "creating a new cluster in $PG_DATA"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 "${locale[@]}" \
    --auth-local=trust --auth-host=scram-sha-256 >>"$LOG_FILE" 2>&1 || {
    tail_log
    die "initdb failed"
  }
  # Our settings live in oms.conf, rewritten on every start (ports may change).
  echo "include_if_exists = 'oms.conf'" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

write_config() {
  as_pg tee "$PG_DATA/oms.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh on every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
unix_socket_permissions = 0700
# Sized for tests and benchmarks on a small (2-core) machine: many connection pools.
max_connections = 300
shared_buffers = 256MB
# Durability stays on: a committed order must survive a crash, also locally.
fsync = on
synchronous_commit = on
full_page_writes = on
password_encryption = 'scram-sha-256'
timezone = 'UTC'
log_timezone = 'UTC'
# stderr goes to the log file given to pg_ctl -l.
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  # Socket: trusted, since only the server's OS user (and root) can enter its folder.
  # TCP: loopback only, with passwords.
  as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh on every start; edits here are lost.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
EOF
}

# Roles, passwords and databases: the same idempotent SQL as the compose setup, run on
# every start, so the URLs printed below always work.
ensure_databases() {
  psql_admin -f - <"$INIT_SQL" >/dev/null || die "creating the service roles and databases ($INIT_SQL) failed"
}

print_env() {
  local name
  for name in "${SERVICES[@]}"; do
    echo "${name^^}_DATABASE_URL=postgresql+asyncpg://oms_$name:oms_$name@127.0.0.1:$PG_PORT/oms_$name"
  done
}

# --- commands --------------------------------------------------------------------------

cmd_start() {
  local t0=$EPOCHREALTIME pid
  mkdir -p "$OMS_STATE_DIR"
  exec 9>"$LOCK_FILE"
  flock 9
  find_pg_bin || install_postgres

  if pid="$(server_pid)"; then
    local port
    port="$(running_port)"
    [[ "$port" == "$PG_PORT" ]] ||
      die "the server of $OMS_STATE_DIR already runs (pid $pid) on port $port, not $PG_PORT; stop it first or use another OMS_STATE_DIR"
    local deadline=$((SECONDS + PG_START_TIMEOUT))
    until accepting; do
      ((SECONDS < deadline)) || die "pid $pid serves $PG_DATA but does not accept connections on 127.0.0.1:$PG_PORT (another PG_PORT?); see $LOG_FILE"
      sleep 0.2
    done
    say "already running (pid $pid) on 127.0.0.1:$PG_PORT"
    ensure_databases
    print_env
    return 0
  fi

  if port_open "$PG_PORT"; then
    die "port $PG_PORT on 127.0.0.1 is already taken by another process; stop it or choose another PG_PORT
$(port_owner "$PG_PORT")"
  fi
  prepare_dirs
  init_cluster
  write_config

  say "starting PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$PG_PORT (log $LOG_FILE)"
  # pg_ctl forks the server into its own session; it outlives this shell.
  if ! as_pg bash -c "$CLOSE_FDS"'exec "$@"' _ "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG_FILE" \
    -s -w -t "$PG_START_TIMEOUT" start; then
    tail_log
    die "PostgreSQL did not start within ${PG_START_TIMEOUT}s; see $LOG_FILE"
  fi
  # Bounded wait until it accepts TCP connections, as the services will connect.
  local deadline=$((SECONDS + PG_START_TIMEOUT))
  until accepting; do
    if ((SECONDS >= deadline)) || ! server_pid >/dev/null; then
      tail_log
      die "PostgreSQL does not accept connections on 127.0.0.1:$PG_PORT; see $LOG_FILE"
    fi
    sleep 0.2
  done
  ensure_databases
  say "ready (pid $(server_pid)) after $(elapsed "$t0")s"
  print_env
}

cmd_stop() {
  local pid
  if [[ ! -d "$PG_DATA" ]]; then
    say "not running (state dir $OMS_STATE_DIR)"
    return 0
  fi
  exec 9>"$LOCK_FILE"
  flock 9
  if ! pid="$(server_pid)"; then
    say "not running (state dir $OMS_STATE_DIR)"
    return 0
  fi
  find_pg_bin || die "a server runs (pid $pid) but the PostgreSQL binaries are gone; kill $pid"
  say "stopping (pid $pid) ..."
  # fast: roll back open transactions and shut down cleanly; immediate: no checkpoint
  # (recovery on next start, still no data loss); SIGKILL as the very last resort.
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -s -m fast -w -t "$PG_STOP_TIMEOUT" stop ||
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -s -m immediate -w -t 10 stop || true
  # pg_ctl returns once postmaster.pid is gone, a moment before the process exits.
  local i
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    say "still running; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  say "stopped"
}

cmd_status() {
  local pid
  if pid="$(server_pid)"; then
    PG_PORT="$(running_port)" # report the instance as it runs
    find_pg_bin || true
    if [[ -n "${PG_BIN:-}" ]] && accepting; then
      echo "postgres: running (pid $pid) on 127.0.0.1:$PG_PORT, state $OMS_STATE_DIR"
      return 0
    fi
    echo "postgres: process $pid is up but 127.0.0.1:$PG_PORT does not accept connections (see $LOG_FILE)"
    return 1
  fi
  echo "postgres: not running (state $OMS_STATE_DIR)"
  return 3
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) print_env | sed 's/^/export /' ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
