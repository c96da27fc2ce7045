"""Real receiving ends for the notification tests: an SMTP server and a webhook endpoint,
both in the test process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


REFUSED_MAILBOX_PREFIX = "refused"
"""The collector refuses recipients whose address starts with this, as a mail server
refuses a mailbox that does not exist."""


class MailCollector:
    """aiosmtpd handler keeping every message it accepts, and the client connection
    (its address and port) each came over."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.connections: list[tuple[str, int]] = []

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: list[str]
    ) -> str:
        if address.startswith(REFUSED_MAILBOX_PREFIX):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=default).parsebytes(envelope.original_content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.connections.append(tuple(session.peer))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]


class HeloOnlyCollector(MailCollector):
    """A mail server without ESMTP: it refuses EHLO, so a client says HELO and uses no
    extension (no 8-bit bodies)."""

    async def handle_EHLO(
        self, _server: Any, _session: Any, _envelope: Any, _hostname: str, _responses: list[str]
    ) -> list[str]:
        return ["502 5.5.1 EHLO not implemented"]


@contextlib.contextmanager
def smtp_server(
    *, esmtp: bool = True, eight_bit_mime: bool = True, smtputf8: bool = False
) -> Iterator[tuple[MailCollector, int]]:
    """A mail server on 127.0.0.1, by default one offering 8BITMIME and not SMTPUTF8 (as
    aiosmtpd does)."""
    collector = HeloOnlyCollector() if not esmtp else MailCollector()
    port = free_port()
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        # aiosmtpd offers 8BITMIME unless it is to decode what it receives.
        decode_data=not eight_bit_mime,
        enable_SMTPUTF8=smtputf8,
    )
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


@dataclass(frozen=True)
class WebhookCall:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """Records every POST; answers 500 on paths under /failing, 204 elsewhere."""

    def __init__(self) -> None:
        self.calls: list[WebhookCall] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.calls.append(
                    WebhookCall(self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                self.send_response(500 if self.path.startswith("/failing") else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test asserts on the calls instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def calls_to(self, path: str) -> list[WebhookCall]:
        return [call for call in self.calls if call.path == path]

    @contextlib.contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)
