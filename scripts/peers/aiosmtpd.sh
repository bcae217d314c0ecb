#!/usr/bin/env bash
# aiosmtpd.sh — controllable Python SMTP/SMTPS/LMTP peer (aiosmtpd) that stores every message in a folder.
# Part of effect-smtp's interop setup (scripts/peers/, usually driven by all.sh); test/interop/peers.ts reads the
# peer.json written here. Nothing is installed or configured system-wide beyond the Debian packages it needs.
#
#   aiosmtpd.sh start|stop|status|env [STATE_DIR]
#
# Needs Debian's python3-aiosmtpd, hence Debian's interpreter /usr/bin/python3 (a pyenv/venv python3 first on
# PATH cannot import it). Runs as root or as any user (all ports > 1024).
# Layout under STATE_DIR (arg 2, or $STATE_DIR, default /tmp/effect-smtp-peers):
#   aiosmtpd/mail/<n>.eml + <n>.json   message bytes + envelope (written before the final 250 is sent)
#   aiosmtpd/lmtp.sock                 LMTP on a Unix socket
#   aiosmtpd/aiosmtpd.log, aiosmtpd/aiosmtpd.pid
#   tls/{ca.pem,server.pem,server.key} shared test CA + server cert
# Env knobs (defaults): AIO_HOST=127.0.0.1 AIO_SMTP_PORT=2526 (STARTTLS offered) AIO_SMTPS_PORT=2466 (implicit TLS)
#   AIO_LMTP_PORT=2425  AIO_USER=testuser AIO_PASS=testpass AIO_OAUTH_TOKEN=testtoken AIO_SIZE=10485760
#   AIO_AUTH_REQUIRE_TLS=1 (AUTH only after STARTTLS on 2526)  AIO_AUTH_REQUIRED=0  AIO_REQUIRE_STARTTLS=0
#   AIO_PIPELINING=1 (advertise PIPELINING)   Set a port to 0 to disable that listener.
# Scripted replies via magic local parts (mail-NNN, rcpt-NNN, data-NNN, slowrcpt-MS, slowdata-MS, drop,
# dropdata): see aiosmtpd_peer.py / README.md.
set -euo pipefail

CMD=${1:-}
STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PY=/usr/bin/python3
export AIO_HOST=${AIO_HOST:-127.0.0.1}
export AIO_SMTP_PORT=${AIO_SMTP_PORT:-2526}
export AIO_SMTPS_PORT=${AIO_SMTPS_PORT:-2466}
export AIO_LMTP_PORT=${AIO_LMTP_PORT:-2425}
export AIO_USER=${AIO_USER:-testuser}
export AIO_PASS=${AIO_PASS:-testpass}
export AIO_OAUTH_TOKEN=${AIO_OAUTH_TOKEN:-testtoken}
export AIO_SIZE=${AIO_SIZE:-10485760}

die() { echo "aiosmtpd.sh: $*" >&2; exit 1; }
SELF=aiosmtpd.sh
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -n "$CMD" ] || die "usage: aiosmtpd.sh start|stop|status|env [STATE_DIR]"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
ADIR=$STATE/aiosmtpd
TLS=$STATE/tls
PIDF=$ADIR/aiosmtpd.pid

is_running() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }

case $CMD in
start)
  ensure_pkgs python3-aiosmtpd openssl
  t0=$(date +%s.%N)
  is_running && die "already running (pid $(cat "$PIDF")); run: $0 stop $STATE"
  for p in $AIO_SMTP_PORT $AIO_SMTPS_PORT $AIO_LMTP_PORT; do
    [ "$p" = 0 ] || ! port_listening "$p" || die "port $p is already in use"
  done
  ensure_certs
  [ -r "$TLS/server.key" ] || die "$TLS/server.key is not readable by $(id -un)"
  mkdir -p "$ADIR/mail"
  export AIO_OUTDIR=$ADIR/mail AIO_LMTP_SOCKET=${AIO_LMTP_SOCKET-$ADIR/lmtp.sock}
  export AIO_CERT=$TLS/server-chain.pem AIO_KEY=$TLS/server.key AIO_READY_FILE=$ADIR/ready
  rm -f "$ADIR/ready"
  # setsid: own session, so the server survives the caller's shell and can be stopped by pid
  setsid "$PY" "$HERE/aiosmtpd_peer.py" >>"$ADIR/aiosmtpd.log" 2>&1 < /dev/null &
  echo $! > "$PIDF"
  for _ in $(seq 1 200); do [ -s "$ADIR/ready" ] && break; kill -0 "$(cat "$PIDF")" 2>/dev/null || break; sleep 0.05; done
  [ -s "$ADIR/ready" ] || { tail -30 "$ADIR/aiosmtpd.log" >&2; kill -TERM "$(cat "$PIDF")" 2>/dev/null || true
                            rm -f "$PIDF"; die "server did not start"; }
  cat "$ADIR/ready" > "$PIDF"   # the server writes its own pid once all listeners are bound
  cat > "$ADIR/peer.env" <<EOF
AIO_HOST="$AIO_HOST"
AIO_SMTP_PORT="$AIO_SMTP_PORT"
AIO_SMTPS_PORT="$AIO_SMTPS_PORT"
AIO_LMTP_PORT="$AIO_LMTP_PORT"
AIO_LMTP_SOCKET="$AIO_LMTP_SOCKET"
AIO_USER="$AIO_USER"
AIO_PASS="$AIO_PASS"
AIO_OAUTH_TOKEN="$AIO_OAUTH_TOKEN"
AIO_CA="$TLS/ca.pem"
AIO_OUTDIR="$ADIR/mail"
AIO_LOG="$ADIR/aiosmtpd.log"
EOF
  cat > "$ADIR/peer.json" <<EOF
{"host":"$AIO_HOST","ports":{"smtp":$AIO_SMTP_PORT,"smtps":$AIO_SMTPS_PORT,"lmtp":$AIO_LMTP_PORT},
 "lmtpSocket":"$AIO_LMTP_SOCKET","user":"$AIO_USER","password":"$AIO_PASS","oauthToken":"$AIO_OAUTH_TOKEN",
 "ca":"$TLS/ca.pem","outdir":"$ADIR/mail","log":"$ADIR/aiosmtpd.log"}
EOF
  t1=$(date +%s.%N)
  echo "aiosmtpd started in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s  (pid $(cat "$PIDF"))"
  cat "$ADIR/peer.env"; echo "AIO_INFO_JSON=$ADIR/peer.json"
  ;;
stop)
  is_running || { echo "aiosmtpd.sh: not running"; rm -f "$PIDF"; exit 0; }
  pid=$(cat "$PIDF")
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$PIDF" "$ADIR/ready"
  echo "aiosmtpd stopped (pid $pid)"
  ;;
status)
  if is_running; then echo "running (pid $(cat "$PIDF"))"; cat "$ADIR/peer.env"; else echo "not running"; exit 3; fi
  ;;
env) cat "$ADIR/peer.env" ;;
*) die "usage: aiosmtpd.sh start|stop|status|env [STATE_DIR]" ;;
esac
