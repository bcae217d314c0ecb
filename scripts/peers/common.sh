# common.sh: helpers shared by the peer scripts (sourced; expects die(), STATE, TLS and SELF set).

# Installs the Debian packages that are missing (root only). Postfix is preseeded so that the
# *system* Postfix stays unconfigured and stopped.
ensure_pkgs() {
  local p missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run once as root to install them"
  echo "$SELF: installing ${missing[*]}" >&2
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

port_listening() { # port
  local hex; hex=$(printf ':%04X' "$1")
  awk -v h="$hex" 'FNR>1 && $4=="0A" && substr($2, length($2)-4)==h {f=1} END{exit !f}' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# The test CA and a server certificate for localhost, mx.example.test, 127.0.0.1 and ::1, made once
# per state dir (under a lock: several peers may start at once).
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
