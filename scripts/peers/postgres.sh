#!/usr/bin/env bash
# postgres.sh — a private PostgreSQL cluster on loopback, for the outbox's tests (test/outbox/, examples/outbox/).
# Part of effect-smtp's interop setup (scripts/peers/, usually driven by all.sh).
#
#   postgres.sh start|stop|status|env [STATE_DIR]
#
# initdb into the state dir (as the `postgres` user when run as root: the server refuses to run as root), trust
# authentication on 127.0.0.1 only, one database (PG_DB). Nothing is configured system-wide: the Debian cluster
# (if any) is neither used nor started.
# Layout under STATE_DIR (arg 2, or $STATE_DIR, default /tmp/effect-smtp-peers):
#   postgres/data/, postgres/postgres.log, postgres/peer.env, postgres/peer.json
# Env knobs (defaults): PG_HOST=127.0.0.1 PG_PORT=5433 PG_USER=postgres PG_DB=outbox
set -euo pipefail

CMD=${1:-}
STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5433}
PG_USER=${PG_USER:-postgres}
PG_DB=${PG_DB:-outbox}

die() { echo "postgres.sh: $*" >&2; exit 1; }
SELF=postgres.sh
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -n "$CMD" ] || die "usage: postgres.sh start|stop|status|env [STATE_DIR]"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
PDIR=$STATE/postgres
DATA=$PDIR/data

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }; done
  return 1
}
# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
is_running() { [ -f "$DATA/postmaster.pid" ] && kill -0 "$(head -1 "$DATA/postmaster.pid")" 2>/dev/null; }

case $CMD in
start)
  ensure_pkgs postgresql
  BIN=$(bindir) || die "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"
  t0=$(date +%s.%N)
  is_running && die "already running; run: $0 stop $STATE"
  port_listening "$PG_PORT" && die "port $PG_PORT is already in use"
  mkdir -p "$PDIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PDIR"
  if [ ! -s "$DATA/PG_VERSION" ]; then
    as_owner "$BIN/initdb" -D "$DATA" -U "$PG_USER" --auth=trust --no-sync -E UTF8 >"$PDIR/initdb.log" 2>&1 ||
      { cat "$PDIR/initdb.log" >&2; die "initdb failed"; }
  fi
  # fsync off: a test database, thrown away with the state dir
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$PDIR/postgres.log" -w -t 30 \
    -o "-h $PG_HOST -p $PG_PORT -k $PDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { tail -30 "$PDIR/postgres.log" >&2; die "postgres did not start"; }
  as_owner "$BIN/psql" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1 ||
    as_owner "$BIN/createdb" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
  cat > "$PDIR/peer.env" <<EOF2
PG_HOST="$PG_HOST"
PG_PORT="$PG_PORT"
PG_USER="$PG_USER"
PG_DB="$PG_DB"
PG_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
EOF2
  cat > "$PDIR/peer.json" <<EOF2
{"host":"$PG_HOST","port":$PG_PORT,"user":"$PG_USER","database":"$PG_DB","url":"postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"}
EOF2
  [ "$(id -u)" = 0 ] && chown postgres "$PDIR/peer.env" "$PDIR/peer.json"
  t1=$(date +%s.%N)
  echo "postgres started in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s  (pid $(head -1 "$DATA/postmaster.pid"))"
  cat "$PDIR/peer.env"; echo "PG_INFO_JSON=$PDIR/peer.json"
  ;;
stop)
  is_running || { echo "postgres.sh: not running"; exit 0; }
  BIN=$(bindir) || die "no PostgreSQL binaries"
  as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  echo "postgres stopped"
  ;;
status)
  if is_running; then echo "running (pid $(head -1 "$DATA/postmaster.pid"))"; cat "$PDIR/peer.env"; else echo "not running"; exit 3; fi
  ;;
env) cat "$PDIR/peer.env" ;;
*) die "usage: postgres.sh start|stop|status|env [STATE_DIR]" ;;
esac
