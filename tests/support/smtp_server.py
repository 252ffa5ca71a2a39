"""A real SMTP server on loopback for tests/notify.rs (Debian's python3-aiosmtpd).

Usage: smtp_server.py PORT CERT_PEM KEY_PEM OUT_DIR USER PASSWORD

STARTTLS is required before anything else, and AUTH (PLAIN or LOGIN, only after TLS) before
MAIL. Each message received is written to OUT_DIR as NNNN.eml: three X-Test-* lines (envelope
sender, recipients, the authenticated login), then the message as received. Prints "ready" once
it accepts connections.
"""
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, out, user, password = sys.argv[1:7]


class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(out) if f.endswith(".eml")])
        tmp = os.path.join(out, f"{n:04}.tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Test-Mail-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Test-Rcpt-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            data = session.auth_data
            login = data.login.decode() if isinstance(data, LoginPassword) and session.authenticated else "none"
            f.write(b"X-Test-Login: " + login.encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(out, f"{n:04}.eml"))
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Keep(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
threading.Event().wait()
