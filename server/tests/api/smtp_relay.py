"""A real SMTP relay for the outbox tests (aiosmtpd, Debian's python3-aiosmtpd).

    smtp_relay.py MODE CERT_PEM KEY_PEM USER PASSWORD

MODE is `starttls` (STARTTLS required before AUTH and MAIL) or `implicit` (TLS from the first
byte). AUTH (PLAIN, LOGIN) is required before MAIL. Listens on 127.0.0.1, a free port; prints
`PORT <n>` once it accepts connections, then one JSON line per message received:
{"user", "mail_from", "rcpt_tos", "data"}. Ends when its standard input closes.
"""
import asyncio
import json
import logging
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    # aiosmtpd warns of AUTH without STARTTLS in implicit mode, where TLS is the socket's.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    mode, cert, key, user, password = sys.argv[1:6]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            login = session.auth_data.login.decode() if session.auth_data else None
            print(
                json.dumps(
                    {
                        "user": login,
                        "mail_from": envelope.mail_from,
                        "rcpt_tos": envelope.rcpt_tos,
                        "data": envelope.content.decode("utf-8", "replace"),
                    }
                ),
                flush=True,
            )
            return "250 Message accepted for delivery"

    def protocol():
        kwargs = dict(
            authenticator=authenticate,
            auth_required=True,
            hostname="localhost",
        )
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
        else:
            # TLS is done by the listening socket; nothing is sent before it.
            kwargs.update(auth_require_tls=False)
        return SMTP(Handler(), **kwargs)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            protocol,
            "127.0.0.1",
            0,
            ssl=context if mode == "implicit" else None,
        )
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        # Stop when the test (our parent) closes our standard input or dies.
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
