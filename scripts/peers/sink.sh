#!/usr/bin/env bash
# sink.sh — Postfix smtp-sink as a fast discard SMTP (and LMTP) peer for benchmarks, plus an smtp-source bench.
# Part of effect-smtp's interop setup (scripts/peers/, usually driven by all.sh); test/interop/peers.ts reads the
# peer.json written here. Nothing is installed or configured system-wide beyond the Debian packages it needs.
#
#   sink.sh start|stop|status|env|bench [STATE_DIR]
#
# Layout under STATE_DIR (arg 2, or $STATE_DIR, default /tmp/effect-smtp-peers):
#   sink/sink.pid, sink/lmtp-sink.pid, sink/sink.log + sink/lmtp-sink.log (smtp-sink -c running counters
#   "sess=N quit=N mesg=N", CR-separated; `sink.sh status` prints the latest)
#   sink/dump/...  one file per message, only with SINK_DUMP=1 (slows the sink down a lot)
# Env knobs (defaults):
#   SINK_HOST=127.0.0.1  SINK_PORT=2625  SINK_LMTP_PORT=2624 (0 = no LMTP sink)  SINK_BACKLOG=1024
#   SINK_DATA_DELAY=0    seconds (integer) to wait before answering DATA            (smtp-sink -w)
#   SINK_CMD_DELAY=      e.g. "rcpt:1" -> wait 1 s before answering RCPT; several: "rcpt:1 mail:2" (smtp-sink -W)
#   SINK_DUMP=0          1 = write every transaction to sink/dump (smtp-sink -d)
#   SINK_OPTS=           extra smtp-sink flags, e.g. "-p" (no PIPELINING) "-E" (no ENHANCEDSTATUSCODES) "-8" "-N"
#                        "-Q rcpt" (421+disconnect at RCPT) "-r data" (4xx to DATA) "-f rcpt" (5xx to RCPT)
# smtp-sink advertises PIPELINING 8BITMIME XCLIENT XFORWARD ENHANCEDSTATUSCODES DSN (and AUTH unless -a; its AUTH
# answers "250", not 235, so this script passes -a). It has NO CHUNKING/BDAT, SIZE, SMTPUTF8 or STARTTLS: for a
# CHUNKING-capable discard sink use:  PF_MODE=discard postfix.sh start STATE_DIR   (see README).
set -euo pipefail

CMD=${1:-}
STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
SINK_HOST=${SINK_HOST:-127.0.0.1}
SINK_PORT=${SINK_PORT:-2625}
SINK_LMTP_PORT=${SINK_LMTP_PORT:-2624}
SINK_BACKLOG=${SINK_BACKLOG:-1024}
SINK_DATA_DELAY=${SINK_DATA_DELAY:-0}
SINK_CMD_DELAY=${SINK_CMD_DELAY:-}
SINK_DUMP=${SINK_DUMP:-0}
SINK_OPTS=${SINK_OPTS:-}

die() { echo "sink.sh: $*" >&2; exit 1; }
SELF=sink.sh
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -n "$CMD" ] || die "usage: sink.sh start|stop|status|env|bench [STATE_DIR]"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
SDIR=$STATE/sink
case $SINK_HOST in *:*) ADDR="[$SINK_HOST]" ;; *) ADDR=$SINK_HOST ;; esac

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_one() { # pidfile logfile port extra-flags...
  local pidf=$1 logf=$2 port=$3; shift 3
  local args=(-a -c -h sink.example.test)
  [ "$(id -u)" = 0 ] && args+=(-u nobody)          # smtp-sink refuses to keep root privileges
  [ "$SINK_DATA_DELAY" != 0 ] && args+=(-w "$SINK_DATA_DELAY")
  for d in $SINK_CMD_DELAY; do args+=(-W "$d"); done
  [ "$SINK_DUMP" = 1 ] && { mkdir -p "$SDIR/dump"; chmod 1777 "$SDIR/dump"; args+=(-d "$SDIR/dump/%Y%m%d/%H%M%S."); }
  # shellcheck disable=SC2206
  args+=($SINK_OPTS "$@" "$ADDR:$port" "$SINK_BACKLOG")
  setsid smtp-sink "${args[@]}" >>"$logf" 2>&1 </dev/null &
  echo $! > "$pidf"
  echo "smtp-sink ${args[*]}" >> "$SDIR/cmdline"
}

case $CMD in
start)
  ensure_pkgs postfix
  t0=$(date +%s.%N)
  alive "$SDIR/sink.pid" && die "already running (pid $(cat "$SDIR/sink.pid"))"
  port_listening "$SINK_PORT" && die "port $SINK_PORT is already in use"
  [ "$SINK_LMTP_PORT" = 0 ] || ! port_listening "$SINK_LMTP_PORT" || die "port $SINK_LMTP_PORT is already in use"
  mkdir -p "$SDIR"; : > "$SDIR/cmdline"
  start_one "$SDIR/sink.pid" "$SDIR/sink.log" "$SINK_PORT"
  [ "$SINK_LMTP_PORT" = 0 ] || start_one "$SDIR/lmtp-sink.pid" "$SDIR/lmtp-sink.log" "$SINK_LMTP_PORT" -L
  ok=0
  for _ in $(seq 1 100); do
    if port_listening "$SINK_PORT" && { [ "$SINK_LMTP_PORT" = 0 ] || port_listening "$SINK_LMTP_PORT"; }; then ok=1; break; fi
    alive "$SDIR/sink.pid" || break; sleep 0.05
  done
  if [ $ok != 1 ]; then
    cat "$SDIR"/*sink.log >&2 2>/dev/null || true
    for f in "$SDIR/sink.pid" "$SDIR/lmtp-sink.pid"; do alive "$f" && kill -TERM "$(cat "$f")"; rm -f "$f"; done
    die "smtp-sink did not start"
  fi
  cat > "$SDIR/peer.env" <<EOF
SINK_HOST="$SINK_HOST"
SINK_PORT="$SINK_PORT"
SINK_LMTP_PORT="$SINK_LMTP_PORT"
SINK_LOG="$SDIR/sink.log"
SINK_LMTP_LOG="$SDIR/lmtp-sink.log"
EOF
  t1=$(date +%s.%N)
  echo "smtp-sink started in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s  (pid $(cat "$SDIR/sink.pid")$([ "$SINK_LMTP_PORT" = 0 ] || echo ", lmtp pid $(cat "$SDIR/lmtp-sink.pid")"))"
  cat "$SDIR/cmdline"; cat "$SDIR/peer.env"
  ;;
stop)
  for f in "$SDIR/sink.pid" "$SDIR/lmtp-sink.pid"; do
    alive "$f" || { rm -f "$f"; continue; }
    pid=$(cat "$f"); kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$f"; echo "smtp-sink stopped (pid $pid)"
  done
  ;;
status)
  if alive "$SDIR/sink.pid"; then echo "running (pid $(cat "$SDIR/sink.pid"))"; cat "$SDIR/peer.env"
    printf 'counters: %s\n' "$(tr '\r' '\n' < "$SDIR/sink.log" | grep sess= | tail -1)"; else echo "not running"; exit 3; fi
  ;;
env) cat "$SDIR/peer.env" ;;
bench)
  # smtp-source reference numbers against whatever listens on BENCH_TARGET (default: this sink)
  target=${BENCH_TARGET:-$ADDR:$SINK_PORT}; n=${BENCH_MSGS:-2000}; len=${BENCH_LEN:-1024}
  for s in ${BENCH_SESSIONS:-1 4}; do
    for reuse in -d ""; do
      t0=$(date +%s.%N)
      smtp-source -s "$s" -m "$n" $reuse -l "$len" -f bench@example.test -t sink@example.test -M client.example.test "$target"
      t1=$(date +%s.%N)
      awk -v a="$t0" -v b="$t1" -v n="$n" -v s="$s" -v r="${reuse:-new-conn-per-msg}" -v l="$len" -v t="$target" \
        'BEGIN{printf "%-22s sessions=%d %-18s msgs=%d len=%d  %.2fs  %.0f msg/s\n", t, s, (r=="-d"?"reuse(-d)":r), n, l, b-a, n/(b-a)}'
    done
  done
  ;;
*) die "usage: sink.sh start|stop|status|env|bench [STATE_DIR]" ;;
esac
