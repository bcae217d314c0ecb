#!/usr/bin/env bash
# postfix.sh — private, loopback-only Postfix instance for SMTP client integration tests.
# Part of effect-smtp's interop setup (scripts/peers/, usually driven by all.sh); test/interop/peers.ts reads the
# peer.json written here. Nothing is installed or configured system-wide beyond the Debian packages it needs.
#
#   postfix.sh start|stop|status|env [STATE_DIR]
#
# STATE_DIR (arg 2, or $STATE_DIR, default /tmp/effect-smtp-peers) holds everything ("postfix" = $PF_INSTANCE):
#   $STATE_DIR/postfix/{etc,queue,data,log}   private config_directory / queue / data / maillog
#   $STATE_DIR/postfix/mail/<domain>/<local>/{new,cur,tmp}   delivered mail (Maildir, one file per delivery)
#   $STATE_DIR/tls/{ca.pem,server.pem,server.key}           test CA + server cert (shared by all peers)
#   $STATE_DIR/postfix/peer.env / peer.json                 ports, users, paths (for tests to read)
# The system's /etc/postfix (and any system Postfix instance) is never touched: everything runs via
# `postfix -c $STATE_DIR/postfix/etc`. Requires root (the Postfix master daemon refuses to run otherwise).
#
# Env knobs (defaults):
#   PF_HOST=127.0.0.1 (or ::1)   PF_PORT_PLAIN=2525  PF_PORT_STARTTLS=2587  PF_PORT_TLS=2465  PF_PORT_SUBMISSION=2588
#   PF_SASL_USER=testuser  PF_SASL_PASS=testpass  PF_SASL_MECHS="PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
#   PF_SIZE=10485760  PF_MAILBOXES="alice bob postmaster"
#   PF_MODE=maildir (default) | discard (CHUNKING-capable benchmark sink: accepts any recipient from loopback and
#           discards it; instance dir $STATE_DIR/postfix-discard, ports 2725/2787/2765/2788; PF_INSTANCE overrides)
#   PF_MAIL_UID/PF_MAIL_GID (owner of delivered files; default $SUDO_UID, else owner of STATE_DIR if non-root, else nobody)
set -euo pipefail

CMD=${1:-}
STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
PF_MODE=${PF_MODE:-maildir}
PF_HOST=${PF_HOST:-127.0.0.1}
if [ "$PF_MODE" = discard ]; then   # discard sink: own instance dir + ports, can run next to the maildir instance
  PF_INSTANCE=${PF_INSTANCE:-postfix-discard}
  PF_PORT_PLAIN=${PF_PORT_PLAIN:-2725}; PF_PORT_STARTTLS=${PF_PORT_STARTTLS:-2787}
  PF_PORT_TLS=${PF_PORT_TLS:-2765};     PF_PORT_SUBMISSION=${PF_PORT_SUBMISSION:-2788}
else
  PF_INSTANCE=${PF_INSTANCE:-postfix}
  PF_PORT_PLAIN=${PF_PORT_PLAIN:-2525}; PF_PORT_STARTTLS=${PF_PORT_STARTTLS:-2587}
  PF_PORT_TLS=${PF_PORT_TLS:-2465};     PF_PORT_SUBMISSION=${PF_PORT_SUBMISSION:-2588}
fi
PF_SASL_USER=${PF_SASL_USER:-testuser}
PF_SASL_PASS=${PF_SASL_PASS:-testpass}
PF_SASL_MECHS=${PF_SASL_MECHS:-PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256}
PF_SIZE=${PF_SIZE:-10485760}
PF_MAILBOXES=${PF_MAILBOXES:-alice bob postmaster}
DOMAIN=example.test        # explicit mailboxes; unknown users -> 550 5.1.1 at RCPT
CATCHALL=catchall.test     # any local part accepted, all into one Maildir

die() { echo "postfix.sh: $*" >&2; exit 1; }
SELF=postfix.sh
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -n "$CMD" ] || die "usage: postfix.sh start|stop|status|env [STATE_DIR]"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
PFDIR=$STATE/$PF_INSTANCE
CONF=$PFDIR/etc
QUEUE=$PFDIR/queue
MAILBASE=$PFDIR/mail
TLS=$STATE/tls
LOG=$PFDIR/log/maillog
case $PF_HOST in *:*) LHOST="[$PF_HOST]"; PROTOS=ipv6 ;; *) LHOST=$PF_HOST; PROTOS=ipv4 ;; esac

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (Postfix master refuses to run unprivileged); try: sudo -E $0 $CMD $STATE"; }

# ---- install missing packages (apt-get update only when something is missing) ----
# ---- is something listening on host:port? (reads /proc, no ss/netstat needed) ----
# ---- shared test CA + server cert (SAN: localhost, mx.example.test, 127.0.0.1, ::1) ----
pick_mail_owner() {
  local u=${PF_MAIL_UID:-${SUDO_UID:-}} g=${PF_MAIL_GID:-${SUDO_GID:-}}
  if [ -z "$u" ] || [ "$u" = 0 ]; then u=$(stat -c %u "$STATE"); g=$(stat -c %g "$STATE"); fi
  if [ "$u" = 0 ]; then u=$(id -u nobody); g=$(id -g nobody); fi
  MAIL_UID=$u; MAIL_GID=${g:-$u}
}

write_config() {
  mkdir -p "$CONF" "$QUEUE" "$PFDIR/data" "$PFDIR/log" "$CONF/sasl" "$MAILBASE"
  chmod 755 "$PFDIR" "$CONF" "$QUEUE"
  chown postfix:postfix "$PFDIR/data"; chmod 700 "$PFDIR/data"
  chown "$MAIL_UID:$MAIL_GID" "$MAILBASE"; chmod 755 "$MAILBASE"

  # virtual mailboxes: <addr>  <path relative to virtual_mailbox_base>/   (trailing / = Maildir)
  {
    for u in $PF_MAILBOXES; do echo "$u@$DOMAIN   $DOMAIN/$u/"; done
    echo "fail@$DOMAIN     $DOMAIN/fail/"      # accepted, then bounced by the 'bouncer' transport (DSN tests)
    echo "defer@$DOMAIN    $DOMAIN/defer/"     # accepted, then deferred by the 'deferrer' transport (stays queued)
    echo "@$CATCHALL       $CATCHALL/"
  } > "$CONF/vmailbox"
  printf '%s\n' "fail@$DOMAIN   bouncer:" \
                "defer@$DOMAIN  deferrer:" > "$CONF/transport"
  # scripted RCPT / MAIL / end-of-DATA replies
  printf '%s\n' "tempfail@$DOMAIN  451 4.3.0 simulated temporary RCPT failure" \
                "reject@$DOMAIN    550 5.7.1 simulated permanent RCPT rejection" > "$CONF/rcpt_access"
  printf '%s\n' "tempfail-sender@$DOMAIN  451 4.3.0 simulated temporary MAIL failure" \
                "reject-sender@$DOMAIN    553 5.7.1 simulated MAIL rejection" > "$CONF/sender_access"
  # NB: after an smtpd_end_of_data_restrictions reject Postfix 3.7 keeps the transaction open (client must RSET)
  printf '%s\n' "tempfail-data@$DOMAIN    451 4.3.0 simulated temporary failure after DATA" \
                "reject-data@$DOMAIN      554 5.7.1 simulated rejection after DATA" > "$CONF/eod_access"
  # content-based replies after DATA / BDAT LAST (transaction is reset normally)
  printf '%s\n' '/^Subject:.*\[reject-data\]/   REJECT 5.7.1 simulated content rejection (test instance)' \
                '/^Subject:.*\[tempfail-data\]/ REJECT 4.7.1 simulated temporary content rejection (test instance)' \
                '/^Subject:.*\[discard\]/       DISCARD simulated silent discard (test instance)' > "$CONF/header_checks"

  local deliver
  if [ "$PF_MODE" = discard ]; then
    deliver="virtual_transport = discard:test sink
default_transport = discard:test sink
relay_transport = discard:test sink
transport_maps =
smtpd_relay_restrictions = permit_mynetworks, reject
relay_domains = static:all"
  else
    deliver="virtual_transport = virtual
default_transport = error:5.7.1 outbound mail disabled (test instance)
relay_transport = error:5.7.1 outbound mail disabled (test instance)
transport_maps = texthash:$CONF/transport
smtpd_relay_restrictions = reject_unauth_destination"
  fi

  cat > "$CONF/main.cf" <<EOF
# generated by postfix.sh — private test instance, do not edit (rewritten on every start)
compatibility_level = 3.6
queue_directory = $QUEUE
data_directory = $PFDIR/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $LOG
maillog_file_prefixes = $PFDIR/log
myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = \$mydomain
mydestination =
local_transport = error:5.1.1 local delivery disabled (test instance)
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = $PF_HOST
inet_protocols = $PROTOS
mynetworks = 127.0.0.0/8 [::1]/128
biff = no
smtpd_banner = \$myhostname ESMTP Postfix (test instance)
smtputf8_enable = yes
message_size_limit = $PF_SIZE
# do not rewrite/add headers for loopback clients: store what the client sent
local_header_rewrite_clients =
smtpd_error_sleep_time = 0s
smtpd_peername_lookup = no
# -------- delivery --------
virtual_mailbox_domains = $([ "$PF_MODE" = discard ] || echo "$DOMAIN, $CATCHALL")
virtual_mailbox_base = $MAILBASE
virtual_mailbox_maps = texthash:$CONF/vmailbox
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_GID
virtual_minimum_uid = 1
$deliver
bounce_notice_recipient = postmaster@$DOMAIN
2bounce_notice_recipient = postmaster@$DOMAIN
delay_notice_recipient = postmaster@$DOMAIN
error_notice_recipient = postmaster@$DOMAIN
# -------- restrictions / scripted failures --------
# evaluate sender restrictions at MAIL FROM (the submission port re-enables delay for its client restriction)
smtpd_delay_reject = no
smtpd_sender_restrictions = check_sender_access texthash:$CONF/sender_access
smtpd_recipient_restrictions = check_recipient_access texthash:$CONF/rcpt_access
smtpd_end_of_data_restrictions = check_sender_access texthash:$CONF/eod_access
header_checks = regexp:$CONF/header_checks
# -------- SASL (Cyrus, sasldb with plaintext secrets -> PLAIN LOGIN CRAM-MD5 SCRAM-*) --------
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $CONF/sasl
smtpd_sasl_local_domain = $DOMAIN
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = yes
# -------- TLS (per-port level is set in master.cf) --------
smtpd_tls_chain_files = $TLS/server.key, $TLS/server-chain.pem
smtpd_tls_security_level = none
smtpd_tls_auth_only = no
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
tls_random_source = dev:/dev/urandom
EOF

  cat > "$CONF/master.cf" <<EOF
# generated by postfix.sh — no chroot, loopback-only listeners
# service type  private unpriv  chroot  wakeup  maxproc command + args
$LHOST:$PF_PORT_PLAIN inet n - n - - smtpd
  -o syslog_name=postfix/plain
$LHOST:$PF_PORT_STARTTLS inet n - n - - smtpd
  -o syslog_name=postfix/starttls
  -o smtpd_tls_security_level=may
  -o smtpd_tls_auth_only=yes
$LHOST:$PF_PORT_TLS inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
$LHOST:$PF_PORT_SUBMISSION inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_delay_reject=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
bouncer   unix  -       n       n       -       -       pipe
  flags=q user=nobody argv=/bin/sh -c { echo "simulated delivery failure (test instance)"; exit 67 }
deferrer  unix  -       n       n       -       -       pipe
  flags=q user=nobody argv=/bin/sh -c { echo "simulated temporary delivery failure (test instance)"; exit 75 }
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

  # Cyrus SASL: app "smtpd" reads $CONF/sasl/smtpd.conf; secrets in sasldb (plaintext userPassword)
  cat > "$CONF/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $CONF/sasl/sasldb2
mech_list: $PF_SASL_MECHS
EOF
  rm -f "$CONF/sasl/sasldb2"
  printf '%s' "$PF_SASL_PASS" | saslpasswd2 -f "$CONF/sasl/sasldb2" -a smtpd -c -p -u "$DOMAIN" "$PF_SASL_USER"
  chown root:postfix "$CONF/sasl/sasldb2"; chmod 640 "$CONF/sasl/sasldb2"
}

write_info() {
  cat > "$PFDIR/peer.env" <<EOF
PF_HOST="$PF_HOST"
PF_PORT_PLAIN="$PF_PORT_PLAIN"
PF_PORT_STARTTLS="$PF_PORT_STARTTLS"
PF_PORT_TLS="$PF_PORT_TLS"
PF_PORT_SUBMISSION="$PF_PORT_SUBMISSION"
PF_SASL_USER="$PF_SASL_USER"
PF_SASL_PASS="$PF_SASL_PASS"
PF_SASL_MECHS="$PF_SASL_MECHS"
PF_CA="$TLS/ca.pem"
PF_CERT="$TLS/server.pem"
PF_MAILDIR_BASE="$MAILBASE"
PF_DOMAIN="$DOMAIN"
PF_CATCHALL_DOMAIN="$CATCHALL"
PF_CATCHALL_MAILDIR="$MAILBASE/$CATCHALL"
PF_LOG="$LOG"
PF_MODE="$PF_MODE"
EOF
  cat > "$PFDIR/peer.json" <<EOF
{"host":"$PF_HOST","ports":{"plain":$PF_PORT_PLAIN,"starttls":$PF_PORT_STARTTLS,"tls":$PF_PORT_TLS,"submission":$PF_PORT_SUBMISSION},
 "user":"$PF_SASL_USER","password":"$PF_SASL_PASS","mechanisms":"$PF_SASL_MECHS","size":$PF_SIZE,
 "ca":"$TLS/ca.pem","cert":"$TLS/server.pem","maildirBase":"$MAILBASE","domain":"$DOMAIN",
 "catchallDomain":"$CATCHALL","catchallMaildir":"$MAILBASE/$CATCHALL","log":"$LOG","mode":"$PF_MODE"}
EOF
}

# pids whose session id is $1 (Postfix master calls setsid(), so its children share its session)
session_pids() { local sid=$1 f st; for f in /proc/[0-9]*/stat; do st=$(cat "$f" 2>/dev/null) || continue
  st=${st##*) }; set -- $st; [ "$4" = "$sid" ] && { f=${f#/proc/}; echo "${f%/stat}"; }; done; return 0; }

case $CMD in
start)
  need_root
  ensure_pkgs postfix sasl2-bin libsasl2-modules libsasl2-modules-db openssl
  t0=$(date +%s.%N)
  if [ -f "$CONF/main.cf" ] && ! /usr/lib/postfix/sbin/master -c "$CONF" -t 2>/dev/null; then
    die "already running (config $CONF); run: $0 stop $STATE"
  fi
  for p in $PF_PORT_PLAIN $PF_PORT_STARTTLS $PF_PORT_TLS $PF_PORT_SUBMISSION; do
    port_listening "$p" && die "port $p is already in use"
  done
  # the delivery uid (not root) must be able to traverse STATE_DIR (mktemp -d makes it 0700)
  if [ "$(id -u)" = 0 ] && [ $(( 0$(stat -c %a "$STATE") & 01 )) = 0 ]; then
    chmod o+x "$STATE"; echo "note: chmod o+x $STATE (delivery runs unprivileged)" >&2
  fi
  ensure_certs
  pick_mail_owner
  write_config
  # delivery agent (uid $MAIL_UID) and Postfix daemons must be able to reach their dirs by absolute path
  setpriv --reuid="$MAIL_UID" --regid="$MAIL_GID" --clear-groups test -w "$MAILBASE" \
    || die "uid $MAIL_UID cannot write $MAILBASE — make every parent of $STATE traversable (chmod o+x)"
  setpriv --reuid=postfix --regid=postfix --clear-groups test -x "$PFDIR/data" 2>/dev/null || \
    setpriv --reuid=postfix --regid=postfix --clear-groups test -x "$PFDIR" \
    || die "user postfix cannot traverse to $PFDIR — chmod o+x its parent directories"
  if ! postfix -c "$CONF" start >"$PFDIR/log/start.out" 2>&1; then
    # Postfix prints fatal errors to stderr only when it is a tty (else to syslog/maillog): replay under script(1)
    script -qec "postfix -c '$CONF' check" /dev/null >&2 || true
    cat "$PFDIR/log/start.out" >&2; tail -20 "$LOG" >&2 2>/dev/null || true; die "postfix start failed"
  fi
  for _ in $(seq 1 100); do
    ok=1; for p in $PF_PORT_PLAIN $PF_PORT_STARTTLS $PF_PORT_TLS $PF_PORT_SUBMISSION; do port_listening "$p" || ok=0; done
    [ $ok = 1 ] && break; sleep 0.05
  done
  [ $ok = 1 ] || { postfix -c "$CONF" stop >/dev/null 2>&1 || true; die "ports not listening after start (stopped again); see $LOG"; }
  write_info
  t1=$(date +%s.%N)
  echo "postfix started in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s  (master pid $(head -1 "$QUEUE/pid/master.pid" | tr -d ' '))"
  cat "$PFDIR/peer.env"
  echo "PF_INFO_JSON=$PFDIR/peer.json"
  ;;
stop)
  [ -f "$QUEUE/pid/master.pid" ] || { echo "postfix.sh: not running (no $QUEUE/pid/master.pid)"; exit 0; }
  pid=$(head -1 "$QUEUE/pid/master.pid" | tr -d ' ')
  if /usr/lib/postfix/sbin/master -c "$CONF" -t 2>/dev/null; then echo "postfix.sh: not running"; exit 0; fi
  need_root
  postfix -c "$CONF" stop >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; sleep 1; kill -KILL "$pid" 2>/dev/null || true; fi
  # children exit with the master; sweep stragglers of *this* instance's session only
  for c in $(session_pids "$pid"); do kill -TERM "$c" 2>/dev/null || true; done
  echo "postfix stopped (master pid $pid)"
  ;;
status)
  if [ -f "$CONF/main.cf" ] && ! /usr/lib/postfix/sbin/master -c "$CONF" -t 2>/dev/null; then
    echo "running (master pid $(head -1 "$QUEUE/pid/master.pid" | tr -d ' '))"; cat "$PFDIR/peer.env" 2>/dev/null; exit 0
  fi
  echo "not running"; exit 3
  ;;
env) cat "$PFDIR/peer.env" ;;
*) die "usage: postfix.sh start|stop|status|env [STATE_DIR]" ;;
esac
