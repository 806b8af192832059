#!/usr/bin/python3
"""A real SMTP server for watermeter's end-to-end tests (Debian's python3-aiosmtpd).

STARTTLS is required, AUTH is required (and only offered after STARTTLS); every
accepted message is written to --maildir as one file. Prints "listening on PORT"
once it accepts connections; --port 0 picks a free port.

Run it with /usr/bin/python3 (the Debian interpreter that has aiosmtpd).
"""

import argparse
import asyncio
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# aiosmtpd 1.4 warns about its own internals on every AUTH; the tests' logs stay quiet.
warnings.filterwarnings("ignore", category=DeprecationWarning)


class SaveToDir:
    def __init__(self, maildir):
        self.maildir = maildir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%06d-%d.eml" % (self.count, os.getpid())
        tmp = os.path.join(self.maildir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        # Rename: a reader never sees half a message.
        os.rename(tmp, os.path.join(self.maildir, name))
        return "250 OK stored"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False lets aiosmtpd answer 535 on failure instead of hanging.
        return AuthResult(success=ok, handled=False)

    return check


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    a = p.parse_args()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(a.cert, a.key)
    handler = SaveToDir(a.maildir)

    def factory():
        return SMTP(
            handler,
            hostname="watermeter-test-smtp",
            tls_context=tls,
            require_starttls=True,
            auth_require_tls=True,
            auth_required=True,
            authenticator=authenticator(a.user, a.password),
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host="127.0.0.1", port=a.port)
    port = server.sockets[0].getsockname()[1]
    print("listening on %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
