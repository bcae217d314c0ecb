#!/usr/bin/python3
"""Controllable SMTP / SMTPS / LMTP test server on top of aiosmtpd (Debian python3-aiosmtpd 1.4.x).
Part of effect-smtp's interop setup (scripts/peers/); test/interop/peers.ts reads aiosmtpd/peer.json and the stored files.

Run with Debian's interpreter (/usr/bin/python3); started/stopped by aiosmtpd.sh.
Every accepted message is written *before* the final 250 is sent:
    <outdir>/<n>.eml   exact bytes received (dot-unstuffed, CRLF line endings as sent)
    <outdir>/<n>.json  envelope: mail_from, mail_options, rcpts [{address, options}], helo, peer, tls, auth, proto, port
<n> is a zero-padded sequence number (000001, ...); the .json is written last, atomically (rename).

Scripted behaviour, selected by the local part of addresses (domain is ignored):
  MAIL FROM:<mail-NNN@x>      reply NNN to MAIL            (e.g. mail-451, mail-553)
  RCPT TO:<rcpt-NNN@x>        reply NNN to that RCPT       (e.g. rcpt-450, rcpt-550)
  RCPT TO:<data-NNN@x>        accepted; SMTP: final DATA reply is NNN; LMTP: NNN for this recipient only
  RCPT TO:<slowrcpt-MS@x>     RCPT reply delayed by MS milliseconds
  RCPT TO:<slowdata-MS@x>     final DATA reply delayed by MS milliseconds
  RCPT TO:<drop@x>            connection closed without replying to this RCPT
  RCPT TO:<dropdata@x>        connection closed (no reply) after the message data was received
Env: see aiosmtpd.sh.
"""
import asyncio, base64, hashlib, hmac, json, logging, os, re, secrets, signal, ssl, sys, time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, auth_mechanism
from aiosmtpd.lmtp import LMTP

E = os.environ.get
HOST = E("AIO_HOST", "127.0.0.1")
SMTP_PORT = int(E("AIO_SMTP_PORT", "2526"))
SMTPS_PORT = int(E("AIO_SMTPS_PORT", "2466"))
LMTP_PORT = int(E("AIO_LMTP_PORT", "2425"))
LMTP_SOCKET = E("AIO_LMTP_SOCKET", "")
OUTDIR = E("AIO_OUTDIR", "/tmp/aiosmtpd-mail")
USER = E("AIO_USER", "testuser")
PASSWORD = E("AIO_PASS", "testpass")
TOKEN = E("AIO_OAUTH_TOKEN", "testtoken")
CERT = E("AIO_CERT", "")
KEY = E("AIO_KEY", "")
SIZE = int(E("AIO_SIZE", "10485760"))
HOSTNAME = E("AIO_HOSTNAME", "aiosmtpd.example.test")
AUTH_REQUIRED = E("AIO_AUTH_REQUIRED", "0") == "1"
AUTH_REQUIRE_TLS = E("AIO_AUTH_REQUIRE_TLS", "1") == "1"
REQUIRE_STARTTLS = E("AIO_REQUIRE_STARTTLS", "0") == "1"
PIPELINING = E("AIO_PIPELINING", "1") == "1"
READY_FILE = E("AIO_READY_FILE", "")

log = logging.getLogger("peer")
_seq = 0  # continues after the highest existing <n>.eml in OUTDIR (restart-safe)


def _code(local, prefix):
    m = re.fullmatch(prefix + r"-(\d{3})", local)
    return int(m.group(1)) if m else None


def _reply(code, what, rcpt=None):
    enh = {"2": "2.0.0", "4": "4.0.0", "5": "5.0.0"}.get(str(code)[0])
    return " ".join(x for x in (str(code), enh, f"<{rcpt}>" if rcpt else None, f"simulated {what} reply") if x)


def _local(addr):
    return (addr or "").rpartition("@")[0].lower() if "@" in (addr or "") else (addr or "").lower()


class Handler:
    def __init__(self, proto, port):
        self.proto, self.port = proto, port

    # ---- EHLO / LHLO: add PIPELINING (aiosmtpd handles pipelined input correctly but does not advertise it)
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if PIPELINING:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        code = _code(_local(address), "mail")
        if code:
            return _reply(code, "MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.x_rcpts = []
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = _local(address)
        if local == "drop":
            server.transport.close()
            await asyncio.sleep(30)  # connection_lost() cancels us; never replies
            return "421 4.4.2 closing"
        m = re.fullmatch(r"slowrcpt-(\d+)", local)
        if m:
            await asyncio.sleep(int(m.group(1)) / 1000)
        code = _code(local, "rcpt")
        if code:
            return _reply(code, "RCPT")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        getattr(envelope, "x_rcpts", []).append({"address": address, "options": rcpt_options})
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        global _seq
        rcpts = envelope.rcpt_tos
        locals_ = [_local(r) for r in rcpts]
        if "dropdata" in locals_:
            server.transport.close()
            await asyncio.sleep(30)  # connection_lost() cancels us; never replies
            return "421 4.4.2 closing"
        for l in locals_:
            m = re.fullmatch(r"slowdata-(\d+)", l)
            if m:
                await asyncio.sleep(int(m.group(1)) / 1000)
        per_rcpt = [_code(l, "data") for l in locals_]
        if self.proto == "SMTP" and any(per_rcpt):
            return _reply(next(c for c in per_rcpt if c), "DATA")
        ok_rcpts = [r for r, c in zip(rcpts, per_rcpt) if not c or str(c)[0] == "2"]
        name = None
        if ok_rcpts:
            _seq += 1
            name = f"{_seq:06d}"
            tls = None
            ssl_obj = server.transport.get_extra_info("ssl_object") if server.transport else None
            if ssl_obj is not None:
                tls = {"version": ssl_obj.version(), "cipher": ssl_obj.cipher()[0]}
            auth = None
            if session.authenticated:
                ad = session.auth_data
                auth = {"login": (ad.login.decode("utf-8", "replace") if isinstance(ad, LoginPassword)
                                  else str(ad)), "mechanism": getattr(session, "x_mech", None)}
            meta = {
                "id": name, "proto": self.proto, "port": self.port, "peer": list(session.peer) if isinstance(session.peer, tuple) else session.peer,
                "helo": session.host_name, "tls": tls, "auth": auth,
                "mail_from": envelope.mail_from, "mail_options": envelope.mail_options,
                "smtputf8": bool(getattr(envelope, "smtp_utf8", False)),
                "rcpt_tos": rcpts, "delivered_to": ok_rcpts,
                "rcpts": getattr(envelope, "x_rcpts", []),
                "size": len(envelope.original_content), "received_at": time.time(),
            }
            with open(os.path.join(OUTDIR, name + ".eml"), "wb") as f:
                f.write(envelope.original_content)
            tmp = os.path.join(OUTDIR, "." + name + ".json.tmp")
            with open(tmp, "w") as f:
                json.dump(meta, f, ensure_ascii=False, indent=1)
            os.rename(tmp, os.path.join(OUTDIR, name + ".json"))
            log.info("stored %s from=%s rcpts=%s size=%d", name, envelope.mail_from, ok_rcpts, meta["size"])
        if self.proto == "SMTP":
            return f"250 2.0.0 OK: stored as {name}"
        # LMTP: one reply per accepted recipient, in RCPT order
        lines = []
        for r, c in zip(rcpts, per_rcpt):
            lines.append(_reply(c, "DATA", r) if c else f"250 2.0.0 <{r}> stored as {name}")
        return "\r\n".join(lines)

    # ---- extra SASL mechanisms (PLAIN and LOGIN are aiosmtpd built-ins, checked by authenticator below)
    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        challenge = f"<{secrets.randbelow(10**9)}.{int(time.time())}@{HOSTNAME}>".encode()
        resp = await server.challenge_auth(challenge)
        if resp is None or not isinstance(resp, bytes):
            return AuthResult(success=False, handled=True)
        user, _, digest = resp.decode("utf-8", "replace").rpartition(" ")
        expect = hmac.new(PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        ok = user == USER and hmac.compare_digest(digest.lower(), expect)
        server.session.x_mech = "CRAM-MD5"
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(), b""))

    @auth_mechanism("SCRAM-SHA-256")
    async def auth_SCRAM_SHA_256(self, server, args):
        return await _scram(server, args, "sha256")

    @auth_mechanism("SCRAM-SHA-1")
    async def auth_SCRAM_SHA_1(self, server, args):
        return await _scram(server, args, "sha1")

    @auth_mechanism("XOAUTH2")
    async def auth_XOAUTH2(self, server, args):
        raw = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth(b"")
        if not isinstance(raw, bytes):
            return AuthResult(success=False, handled=True)
        fields = dict(p.split("=", 1) for p in raw.decode("utf-8", "replace").split("\x01") if "=" in p)
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        server.session.x_mech = "XOAUTH2"
        if user == USER and bearer == f"Bearer {TOKEN}":
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        err = base64.b64encode(json.dumps({"status": "401", "schemes": "bearer", "scope": "smtp"}).encode())
        await server.challenge_auth(err, encode_to_b64=False)  # client answers with an empty line
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")


async def _scram(server, args, hname):
    """RFC 5802/7677 server side, no channel binding; password stored in plaintext (test only)."""
    server.session.x_mech = "SCRAM-SHA-256" if hname == "sha256" else "SCRAM-SHA-1"
    first = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth(b"")
    if not isinstance(first, bytes):
        return AuthResult(success=False, handled=True)
    try:
        first = first.decode()
        cb_flag, authzid, bare = first.split(",", 2)
        if cb_flag not in ("n", "y"):
            return AuthResult(success=False, handled=False, message="535 5.7.8 channel binding not supported")
        gs2_header = f"{cb_flag},{authzid},"
        attrs = dict(a.split("=", 1) for a in bare.split(","))
        user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
        cnonce = attrs["r"]
        salt = hashlib.sha256(b"salt" + user.encode()).digest()[:16]
        iters = 4096
        snonce = cnonce + base64.b64encode(secrets.token_bytes(18)).decode()
        server_first = f"r={snonce},s={base64.b64encode(salt).decode()},i={iters}"
        final = await server.challenge_auth(server_first.encode())
        if not isinstance(final, bytes):
            return AuthResult(success=False, handled=True)
        final = final.decode()
        without_proof, _, proof_b64 = final.rpartition(",p=")
        fattrs = dict(a.split("=", 1) for a in without_proof.split(","))
        if fattrs.get("r") != snonce or base64.b64decode(fattrs.get("c", "")) != gs2_header.encode():
            return AuthResult(success=False, handled=False)
        salted = hashlib.pbkdf2_hmac(hname, PASSWORD.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", hname).digest()
        stored_key = hashlib.new(hname, client_key).digest()
        auth_msg = f"{bare},{server_first},{without_proof}".encode()
        client_sig = hmac.new(stored_key, auth_msg, hname).digest()
        proof = base64.b64decode(proof_b64)
        recovered = bytes(a ^ b for a, b in zip(proof, client_sig))
        if user != USER or hashlib.new(hname, recovered).digest() != stored_key:
            return AuthResult(success=False, handled=False)
        server_key = hmac.new(salted, b"Server Key", hname).digest()
        v = base64.b64encode(hmac.new(server_key, auth_msg, hname).digest()).decode()
        # RFC 4954: final server data goes in a 334 challenge; the client then sends an empty line
        if not isinstance(await server.challenge_auth(f"v={v}".encode()), bytes):
            return AuthResult(success=False, handled=True)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return AuthResult(success=False, handled=False, message="501 5.5.2 malformed SCRAM message")


def authenticator(server, session, envelope, mechanism, auth_data):
    session.x_mech = mechanism
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class PeerSMTP(SMTP):
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"


class PeerLMTP(LMTP):
    pass


def make_tls():
    if not (CERT and KEY):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERT, KEY)
    return ctx


async def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").addFilter(lambda r: "login_data is deprecated" not in r.getMessage())
    global _seq
    os.makedirs(OUTDIR, exist_ok=True)
    _seq = max([int(n[:-4]) for n in os.listdir(OUTDIR) if re.fullmatch(r"\d+\.eml", n)] or [0])
    loop = asyncio.get_running_loop()
    tls = make_tls()
    common = dict(hostname=HOSTNAME, data_size_limit=SIZE, enable_SMTPUTF8=True, decode_data=False,
                  authenticator=authenticator, auth_required=AUTH_REQUIRED, loop=loop)
    servers = []
    if SMTP_PORT:
        servers.append(await loop.create_server(
            lambda: PeerSMTP(Handler("SMTP", SMTP_PORT), tls_context=tls, require_starttls=REQUIRE_STARTTLS,
                             auth_require_tls=AUTH_REQUIRE_TLS, **common), HOST, SMTP_PORT))
    if SMTPS_PORT and tls:
        # implicit TLS: aiosmtpd 1.4 does not know the socket is already encrypted -> auth_require_tls=False
        servers.append(await loop.create_server(
            lambda: PeerSMTP(Handler("SMTP", SMTPS_PORT), tls_context=None, auth_require_tls=False, **common),
            HOST, SMTPS_PORT, ssl=tls))
    lmtp_kw = dict(hostname=HOSTNAME, data_size_limit=SIZE, enable_SMTPUTF8=True, decode_data=False, loop=loop)
    if LMTP_PORT:
        servers.append(await loop.create_server(lambda: PeerLMTP(Handler("LMTP", LMTP_PORT), **lmtp_kw), HOST, LMTP_PORT))
    if LMTP_SOCKET:
        if os.path.exists(LMTP_SOCKET):
            os.unlink(LMTP_SOCKET)
        servers.append(await loop.create_unix_server(lambda: PeerLMTP(Handler("LMTP", LMTP_SOCKET), **lmtp_kw), LMTP_SOCKET))
        os.chmod(LMTP_SOCKET, 0o666)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if READY_FILE:
        with open(READY_FILE, "w") as f:
            f.write(str(os.getpid()))
    log.info("ready: smtp=%s smtps=%s lmtp=%s lmtp_socket=%s out=%s", SMTP_PORT, SMTPS_PORT if tls else None,
             LMTP_PORT, LMTP_SOCKET, OUTDIR)
    await stop.wait()
    for s in servers:
        s.close()
    if LMTP_SOCKET and os.path.exists(LMTP_SOCKET):
        os.unlink(LMTP_SOCKET)


if __name__ == "__main__":
    asyncio.run(main())
