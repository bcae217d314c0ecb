#!/usr/bin/env bash
# all.sh start|stop|status [STATE_DIR] — start/stop every interop peer of effect-smtp in one state dir.
# Peers: postfix.sh, dovecot-lmtp.sh, aiosmtpd.sh, sink.sh, and the proxies dante.sh (SOCKS5) and tinyproxy.sh
# (HTTP CONNECT), and postgres.sh (PostgreSQL, for the outbox). Select a subset with PEERS="postfix aiosmtpd".
# Postfix and Dante need root; each script installs its Debian packages with apt-get when they are missing.
# Typical use (see test/interop/peers.ts):
#   scripts/peers/all.sh start /tmp/effect-smtp-peers
#   SMTP_PEERS_DIR=/tmp/effect-smtp-peers npm test
#   scripts/peers/all.sh stop /tmp/effect-smtp-peers     # stops only the PIDs the scripts recorded
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CMD=${1:-}; STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
PEERS=${PEERS:-postfix dovecot-lmtp aiosmtpd sink dante tinyproxy postgres}
rc=0
case $CMD in
start)  for p in $PEERS; do "$HERE/$p.sh" start "$STATE" || { rc=1; echo "all.sh: $p failed to start" >&2; }; done
        [ $rc = 0 ] && echo "all.sh: peers ($PEERS) running; run the interop tests with: SMTP_PEERS_DIR=$STATE npm test" ;;
stop)   for p in $PEERS; do "$HERE/$p.sh" stop "$STATE" || rc=1; done ;;
status) for p in $PEERS; do printf '%-14s ' "$p"; "$HERE/$p.sh" status "$STATE" | head -1 || rc=1; done ;;
*) echo "usage: all.sh start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
exit $rc
