#!/usr/bin/env bash
# tinyproxy.sh — tinyproxy as an HTTP CONNECT proxy with Basic authentication, on loopback only.
# Part of effect-smtp's interop setup (scripts/peers/, usually driven by all.sh); test/interop/proxy.test.ts reads
# the peer.json written here and sends through the proxy to the Postfix / aiosmtpd peers.
#
#   tinyproxy.sh start|stop|status|env [STATE_DIR]
#
# tinyproxy refuses CONNECT to ports not listed with ConnectPort (Debian's default file lists only 443 and 563;
# with no ConnectPort line at all every port is allowed): this configuration lists the SMTP peers' ports
# (TP_CONNECT_PORTS), and a filter lets it reach only localhost / 127.0.0.1, so any other CONNECT is a 403.
# Runs as root (it then drops to nobody) or as any user. Nothing is configured system-wide: the Debian service
# stays stopped, the configuration lives in the state dir.
# Layout under STATE_DIR (arg 2, or $STATE_DIR, default /tmp/effect-smtp-peers):
#   tinyproxy/tinyproxy.conf, tinyproxy/filter, tinyproxy/tinyproxy.log, tinyproxy/tinyproxy.pid,
#   tinyproxy/peer.env, tinyproxy/peer.json
# Env knobs (defaults): TP_HOST=127.0.0.1 TP_PORT=8888 TP_USER=proxyuser TP_PASS=proxypass
#   TP_CONNECT_PORTS="2525 2587 2465 2588 2526 2466" (Postfix's and aiosmtpd's SMTP ports)
set -euo pipefail

CMD=${1:-}
STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
TP_HOST=${TP_HOST:-127.0.0.1}
TP_PORT=${TP_PORT:-8888}
TP_USER=${TP_USER:-proxyuser}
TP_PASS=${TP_PASS:-proxypass}
TP_CONNECT_PORTS=${TP_CONNECT_PORTS:-2525 2587 2465 2588 2526 2466}

die() { echo "tinyproxy.sh: $*" >&2; exit 1; }
SELF=tinyproxy.sh
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -n "$CMD" ] || die "usage: tinyproxy.sh start|stop|status|env [STATE_DIR]"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
TDIR=$STATE/tinyproxy
PIDF=$TDIR/tinyproxy.pid

is_running() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }

case $CMD in
start)
  ensure_pkgs tinyproxy-bin
  t0=$(date +%s.%N)
  is_running && die "already running (pid $(cat "$PIDF")); run: $0 stop $STATE"
  port_listening "$TP_PORT" && die "port $TP_PORT is already in use"
  mkdir -p "$TDIR"
  printf '%s\n' '^localhost$' '^127\.0\.0\.1$' > "$TDIR/filter"
  {
    echo "# written by scripts/peers/tinyproxy.sh"
    if [ "$(id -u)" = 0 ]; then echo "User nobody"; echo "Group $(id -gn nobody)"; fi
    echo "Port $TP_PORT"
    echo "Listen $TP_HOST"
    echo "Timeout 600"
    echo "LogFile \"$TDIR/tinyproxy.log\""
    echo "LogLevel Info"
    echo "MaxClients 100"
    echo "Allow 127.0.0.1"
    echo "BasicAuth $TP_USER $TP_PASS"
    echo "Filter \"$TDIR/filter\""
    echo "FilterDefaultDeny Yes"
    echo "FilterExtended On"
    echo "DisableViaHeader Yes"
    for p in $TP_CONNECT_PORTS; do echo "ConnectPort $p"; done
  } > "$TDIR/tinyproxy.conf"
  : > "$TDIR/tinyproxy.log"
  [ "$(id -u)" = 0 ] && chown nobody "$TDIR/tinyproxy.log"
  # setsid: own session, so the proxy survives the caller's shell and can be stopped by pid; -d: foreground
  setsid tinyproxy -d -c "$TDIR/tinyproxy.conf" >>"$TDIR/tinyproxy.out" 2>&1 </dev/null &
  echo $! > "$PIDF"
  ok=0
  for _ in $(seq 1 100); do
    port_listening "$TP_PORT" && { ok=1; break; }
    is_running || break; sleep 0.05
  done
  if [ $ok != 1 ]; then
    tail -30 "$TDIR/tinyproxy.log" "$TDIR/tinyproxy.out" >&2
    is_running && kill -TERM "$(cat "$PIDF")"; rm -f "$PIDF"
    die "tinyproxy did not start"
  fi
  ports_json=$(printf '%s,' $TP_CONNECT_PORTS); ports_json="[${ports_json%,}]"
  cat > "$TDIR/peer.env" <<EOF
TP_HOST="$TP_HOST"
TP_PORT="$TP_PORT"
TP_USER="$TP_USER"
TP_PASS="$TP_PASS"
TP_CONNECT_PORTS="$TP_CONNECT_PORTS"
TP_LOG="$TDIR/tinyproxy.log"
EOF
  cat > "$TDIR/peer.json" <<EOF
{"host":"$TP_HOST","port":$TP_PORT,"user":"$TP_USER","password":"$TP_PASS","connectPorts":$ports_json,
 "log":"$TDIR/tinyproxy.log"}
EOF
  t1=$(date +%s.%N)
  echo "tinyproxy started in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s  (pid $(cat "$PIDF"))"
  cat "$TDIR/peer.env"; echo "TP_INFO_JSON=$TDIR/peer.json"
  ;;
stop)
  is_running || { echo "tinyproxy.sh: not running"; rm -f "$PIDF"; exit 0; }
  pid=$(cat "$PIDF")
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$PIDF"
  echo "tinyproxy stopped (pid $pid)"
  ;;
status)
  if is_running; then echo "running (pid $(cat "$PIDF"))"; cat "$TDIR/peer.env"; else echo "not running"; exit 3; fi
  ;;
env) cat "$TDIR/peer.env" ;;
*) die "usage: tinyproxy.sh start|stop|status|env [STATE_DIR]" ;;
esac
