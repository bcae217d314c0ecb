#!/usr/bin/env bash
# dante.sh — Dante (danted) as a SOCKS5 proxy with username/password authentication (RFC 1929), on loopback only.
# Part of effect-smtp's interop setup (scripts/peers/, usually driven by all.sh); test/interop/proxy.test.ts reads
# the peer.json written here and sends through the proxy to the Postfix / aiosmtpd peers.
#
#   dante.sh start|stop|status|env [STATE_DIR]
#
# Dante's `username` method checks the password against the system's user database (getpwnam + shadow), so the
# script creates (once) a dedicated system user with no shell and no home, DANTE_USER, and sets its password to
# DANTE_PASS. Requires root: for that user, and for danted to read /etc/shadow. Nothing else is configured
# system-wide: the Debian service stays stopped, the configuration lives in the state dir.
# Layout under STATE_DIR (arg 2, or $STATE_DIR, default /tmp/effect-smtp-peers):
#   dante/danted.conf, dante/danted.log, dante/danted.pid, dante/peer.env, dante/peer.json
# Env knobs (defaults): DANTE_HOST=127.0.0.1 DANTE_PORT=1080 DANTE_USER=effsmtpproxy DANTE_PASS=proxypass
# Clients and destinations are restricted to 127.0.0.0/8 (a request for anything else is refused, reply code 2).
set -euo pipefail

CMD=${1:-}
STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
DANTE_HOST=${DANTE_HOST:-127.0.0.1}
DANTE_PORT=${DANTE_PORT:-1080}
DANTE_USER=${DANTE_USER:-effsmtpproxy}
DANTE_PASS=${DANTE_PASS:-proxypass}

die() { echo "dante.sh: $*" >&2; exit 1; }
SELF=dante.sh
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -n "$CMD" ] || die "usage: dante.sh start|stop|status|env [STATE_DIR]"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
DDIR=$STATE/dante
PIDF=$DDIR/danted.pid

is_running() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }

case $CMD in
start)
  [ "$(id -u)" = 0 ] || die "must run as root (a system user for the username method; danted reads /etc/shadow)"
  ensure_pkgs dante-server
  t0=$(date +%s.%N)
  is_running && die "already running (pid $(cat "$PIDF")); run: $0 stop $STATE"
  port_listening "$DANTE_PORT" && die "port $DANTE_PORT is already in use"
  if ! id -u "$DANTE_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$DANTE_USER" \
      || die "cannot create the system user $DANTE_USER"
  fi
  echo "$DANTE_USER:$DANTE_PASS" | chpasswd || die "cannot set the password of $DANTE_USER"
  mkdir -p "$DDIR"
  cat > "$DDIR/danted.conf" <<EOF
# written by scripts/peers/dante.sh
logoutput: $DDIR/danted.log
internal: $DANTE_HOST port = $DANTE_PORT
external: $DANTE_HOST
clientmethod: none
socksmethod: username
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: error }
client block { from: 0.0.0.0/0 to: 0.0.0.0/0 log: connect error }
socks pass {
  from: 127.0.0.0/8 to: 127.0.0.0/8
  command: connect
  socksmethod: username
  log: connect disconnect error
}
socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 log: connect error }
EOF
  : > "$DDIR/danted.log"
  # setsid: own session, so the proxy survives the caller's shell and can be stopped by pid; no -D: foreground
  setsid danted -f "$DDIR/danted.conf" -p "$DDIR/danted.pid.self" >>"$DDIR/danted.out" 2>&1 </dev/null &
  echo $! > "$PIDF"
  ok=0
  for _ in $(seq 1 100); do
    port_listening "$DANTE_PORT" && { ok=1; break; }
    is_running || break; sleep 0.05
  done
  if [ $ok != 1 ]; then
    tail -30 "$DDIR/danted.log" "$DDIR/danted.out" >&2
    is_running && kill -TERM "$(cat "$PIDF")"; rm -f "$PIDF"
    die "danted did not start"
  fi
  cat > "$DDIR/peer.env" <<EOF
DANTE_HOST="$DANTE_HOST"
DANTE_PORT="$DANTE_PORT"
DANTE_USER="$DANTE_USER"
DANTE_PASS="$DANTE_PASS"
DANTE_LOG="$DDIR/danted.log"
EOF
  cat > "$DDIR/peer.json" <<EOF
{"host":"$DANTE_HOST","port":$DANTE_PORT,"user":"$DANTE_USER","password":"$DANTE_PASS","log":"$DDIR/danted.log"}
EOF
  t1=$(date +%s.%N)
  echo "danted started in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s  (pid $(cat "$PIDF"))"
  cat "$DDIR/peer.env"; echo "DANTE_INFO_JSON=$DDIR/peer.json"
  ;;
stop)
  is_running || { echo "dante.sh: not running"; rm -f "$PIDF"; exit 0; }
  pid=$(cat "$PIDF")
  kill -TERM "$pid"   # danted's own children (negotiate, request, io) exit with it
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$PIDF" "$DDIR/danted.pid.self"
  echo "danted stopped (pid $pid)"
  ;;
status)
  if is_running; then echo "running (pid $(cat "$PIDF"))"; cat "$DDIR/peer.env"; else echo "not running"; exit 3; fi
  ;;
env) cat "$DDIR/peer.env" ;;
*) die "usage: dante.sh start|stop|status|env [STATE_DIR]" ;;
esac
