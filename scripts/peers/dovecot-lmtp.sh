#!/usr/bin/env bash
# dovecot-lmtp.sh — private Dovecot LMTP server (TCP loopback + Unix socket) delivering to Maildirs.
# Part of effect-smtp's interop setup (scripts/peers/, usually driven by all.sh); test/interop/peers.ts reads the
# peer.json written here. Nothing is installed or configured system-wide beyond the Debian packages it needs.
#
#   dovecot-lmtp.sh start|stop|status|env [STATE_DIR]
#
# Layout under STATE_DIR (arg 2, or $STATE_DIR, default /tmp/effect-smtp-peers):
#   dovecot/dovecot.conf, dovecot/users     private config (system /etc/dovecot is never read: dovecot -c ...)
#   dovecot/lmtp.sock                       LMTP on a Unix socket (mode 0666)
#   dovecot/mail/<domain>/<user>/Maildir/{new,cur,tmp}   delivered mail
#   dovecot/log/dovecot.log                 log; dovecot/run = base_dir (master.pid), dovecot/state = state_dir
#   tls/{ca.pem,server.pem,server.key}      shared test CA + server cert (LMTP STARTTLS on the TCP port)
# Users (all in example.test): alice, bob (normal), full (quota 1 byte: passes RCPT, fails after DATA
# with 552 5.2.2 -> demonstrates per-recipient LMTP replies). Unknown users: 550 5.1.1 at RCPT.
#
# Env knobs: DC_HOST=127.0.0.1  DC_LMTP_PORT=2424  DC_USERS="alice bob"  DC_SSL=yes|no
#            DC_MAIL_UID/DC_MAIL_GID (owner of delivered files; default $SUDO_UID, else owner of STATE_DIR if
#            non-root, else nobody). Runs as root (normal) or as an unprivileged user (everything then runs as that user).
set -euo pipefail

CMD=${1:-}
STATE=${2:-${STATE_DIR:-/tmp/effect-smtp-peers}}
DC_HOST=${DC_HOST:-127.0.0.1}
DC_LMTP_PORT=${DC_LMTP_PORT:-2424}
DC_USERS=${DC_USERS:-alice bob}
DC_SSL=${DC_SSL:-yes}
DOMAIN=example.test

die() { echo "dovecot-lmtp.sh: $*" >&2; exit 1; }
[ -n "$CMD" ] || die "usage: dovecot-lmtp.sh start|stop|status|env [STATE_DIR]"
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
DDIR=$STATE/dovecot
CONFF=$DDIR/dovecot.conf
TLS=$STATE/tls
PIDF=$DDIR/run/master.pid
SOCK=$DDIR/lmtp.sock

ensure_pkgs() {
  local p missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run once as root to install them"
  echo "dovecot-lmtp.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

port_listening() { # port
  local hex; hex=$(printf ':%04X' "$1")
  awk -v h="$hex" 'FNR>1 && $4=="0A" && substr($2, length($2)-4)==h {f=1} END{exit !f}' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

ensure_certs() {
  mkdir -p "$TLS"
  (
    flock 9
    [ -s "$TLS/server.pem" ] && [ -s "$TLS/server.key" ] && [ -s "$TLS/ca.pem" ] && exit 0
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -sha256 \
      -subj "/CN=smtp-peers test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,DNS:mx.example.test,IP:127.0.0.1,IP:::1" \
      "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -days 825 -sha256 -extfile server.ext -out server.pem 2>/dev/null
    cat server.pem ca.pem > server-chain.pem
    rm -f server.csr server.ext
    chmod 644 ca.pem server.pem server-chain.pem; chmod 640 ca.key server.key
  ) 9>"$STATE/.tls.lock"
}

is_running() { [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; }

write_config() {
  local me uid gid internal login
  me=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    uid=${DC_MAIL_UID:-${SUDO_UID:-}}; gid=${DC_MAIL_GID:-${SUDO_GID:-}}
    if [ -z "$uid" ] || [ "$uid" = 0 ]; then uid=$(stat -c %u "$STATE"); gid=$(stat -c %g "$STATE"); fi
    if [ "$uid" = 0 ]; then uid=$(id -u nobody); gid=$(id -g nobody); fi
    internal=dovecot; login=dovenull
  else
    uid=$(id -u); gid=$(id -g); internal=$me; login=$me
  fi
  MAIL_UID=$uid; MAIL_GID=${gid:-$uid}
  mkdir -p "$DDIR/run" "$DDIR/state" "$DDIR/log" "$DDIR/mail"
  chmod 755 "$DDIR" "$DDIR/run"
  [ "$(id -u)" = 0 ] && chown "$MAIL_UID:$MAIL_GID" "$DDIR/mail"
  chmod 755 "$DDIR/mail"

  # passwd-file: user:password:uid:gid:gecos:home:shell:extra_fields
  {
    for u in $DC_USERS; do echo "$u@$DOMAIN:{PLAIN}$u-pw::::::"; done
    echo "full@$DOMAIN:{PLAIN}full-pw::::::userdb_quota_rule=*:storage=1B"
  } > "$DDIR/users"
  chmod 644 "$DDIR/users"

  local ssl_block="ssl = no"
  if [ "$DC_SSL" = yes ]; then
    ssl_block="ssl = yes
ssl_cert = <$TLS/server-chain.pem
ssl_key = <$TLS/server.key"
  fi
  cat > "$CONFF" <<EOF
# generated by dovecot-lmtp.sh — private test instance (rewritten on every start)
base_dir = $DDIR/run
state_dir = $DDIR/state
instance_name = smtp-peers-lmtp-$(echo "$DDIR" | md5sum | cut -c1-8)
protocols = lmtp
listen = $DC_HOST
log_path = $DDIR/log/dovecot.log
info_log_path = $DDIR/log/dovecot.log
default_internal_user = $internal
default_login_user = $login
first_valid_uid = 1
first_valid_gid = 1
$ssl_block
hostname = lmtp.$DOMAIN
auth_mechanisms = plain
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu $DDIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%Lu $DDIR/users
  default_fields = uid=$MAIL_UID gid=$MAIL_GID home=$DDIR/mail/%d/%n
}
mail_location = maildir:~/Maildir
lmtp_rcpt_check_quota = no
mail_plugins = quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
}
service lmtp {
  inet_listener lmtp {
    address = $DC_HOST
    port = $DC_LMTP_PORT
  }
  unix_listener $SOCK {
    mode = 0666
  }
}
service anvil {
  chroot =
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
  if [ "$(id -u)" != 0 ]; then   # unprivileged: no chown to the dovecot group, everything runs as $me
    cat >> "$CONFF" <<EOF
service stats {
  unix_listener stats-writer {
    group =
  }
}
service dict {
  unix_listener dict {
    group =
  }
}
service dict-async {
  unix_listener dict-async {
    group =
  }
}
EOF
  fi
}

case $CMD in
start)
  ensure_pkgs dovecot-core dovecot-lmtpd openssl
  t0=$(date +%s.%N)
  is_running && die "already running (pid $(cat "$PIDF")); run: $0 stop $STATE"
  port_listening "$DC_LMTP_PORT" && die "port $DC_LMTP_PORT is already in use"
  # the delivery uid (not root) must be able to traverse STATE_DIR (mktemp -d makes it 0700)
  if [ "$(id -u)" = 0 ] && [ $(( 0$(stat -c %a "$STATE") & 01 )) = 0 ]; then
    chmod o+x "$STATE"; echo "note: chmod o+x $STATE (delivery runs unprivileged)" >&2
  fi
  [ "$DC_SSL" = yes ] && ensure_certs
  write_config
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$MAIL_UID" --regid="$MAIL_GID" --clear-groups test -w "$DDIR/mail" \
      || die "uid $MAIL_UID cannot write $DDIR/mail — make every parent of $STATE traversable (chmod o+x)"
  fi
  rm -f "$SOCK"
  # the dovecot master daemonizes but keeps the caller's stderr open (so `all.sh start | tee x` or
  # $(all.sh start) would never see EOF): give it /dev/null and a log file, and show that file on failure
  dovecot -c "$CONFF" </dev/null >"$DDIR/log/start.out" 2>&1 || {
    cat "$DDIR/log/start.out" >&2; tail -20 "$DDIR/log/dovecot.log" >&2 2>/dev/null || true; die "dovecot failed to start"; }
  ok=0
  for _ in $(seq 1 100); do
    if port_listening "$DC_LMTP_PORT" && [ -S "$SOCK" ] && [ -s "$PIDF" ]; then ok=1; break; fi; sleep 0.05
  done
  if [ $ok != 1 ]; then
    tail -20 "$DDIR/log/dovecot.log" >&2 2>/dev/null || true
    [ -s "$PIDF" ] && kill -TERM "$(cat "$PIDF")" 2>/dev/null || true
    die "LMTP not listening after start (stopped again)"
  fi
  cat > "$DDIR/peer.env" <<EOF
DC_HOST="$DC_HOST"
DC_LMTP_PORT="$DC_LMTP_PORT"
DC_LMTP_SOCKET="$SOCK"
DC_USERS="$(for u in $DC_USERS; do printf '%s ' "$u@$DOMAIN"; done)full@$DOMAIN"
DC_MAILDIR_TEMPLATE="$DDIR/mail/$DOMAIN/{user}/Maildir"
DC_SSL="$DC_SSL"
DC_CA="$TLS/ca.pem"
DC_LOG="$DDIR/log/dovecot.log"
EOF
  cat > "$DDIR/peer.json" <<EOF
{"host":"$DC_HOST","lmtpPort":$DC_LMTP_PORT,"lmtpSocket":"$SOCK","domain":"$DOMAIN",
 "users":[$(for u in $DC_USERS; do printf '"%s",' "$u@$DOMAIN"; done)"full@$DOMAIN"],"overQuotaUser":"full@$DOMAIN",
 "maildir":"$DDIR/mail/$DOMAIN/{user}/Maildir","starttls":$([ "$DC_SSL" = yes ] && echo true || echo false),
 "ca":"$TLS/ca.pem","log":"$DDIR/log/dovecot.log"}
EOF
  t1=$(date +%s.%N)
  echo "dovecot LMTP started in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s  (master pid $(cat "$PIDF"))"
  cat "$DDIR/peer.env"; echo "DC_INFO_JSON=$DDIR/peer.json"
  ;;
stop)
  is_running || { echo "dovecot-lmtp.sh: not running"; exit 0; }
  pid=$(cat "$PIDF")
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
  echo "dovecot LMTP stopped (master pid $pid)"
  ;;
status)
  if is_running; then echo "running (master pid $(cat "$PIDF"))"; cat "$DDIR/peer.env"; else echo "not running"; exit 3; fi
  ;;
env) cat "$DDIR/peer.env" ;;
*) die "usage: dovecot-lmtp.sh start|stop|status|env [STATE_DIR]" ;;
esac
