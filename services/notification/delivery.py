"""The two ways a message leaves: e-mail over SMTP and HMAC-signed webhook POSTs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import aiosmtplib
import httpx

from services.notification.domain import webhook_signature
from services.notification.mail import MailWriter, OutgoingMail
from services.notification.templates import RenderedMessage


class DeliveryRefused(Exception):
    """The receiving end answered, but did not take the message."""


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    from_address: str
    timeout_seconds: float
    _writer: MailWriter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_writer", MailWriter(self.from_address))

    def message(self, notification_id: str, to: str, rendered: RenderedMessage) -> OutgoingMail:
        return self._writer.write(notification_id, to, rendered)

    async def send_all(
        self, messages: Sequence[OutgoingMail], *, connections: int
    ) -> list[Exception | None]:
        """Hands each message to the mail server; one result per message, None when it was
        accepted, else why not.

        At most `connections` SMTP connections are open at once, each carrying message
        after message: a connection's set-up (greeting, EHLO, QUIT) costs as much as the
        message itself. A connection that failed a message is closed and the next message
        opens another, since a refused transaction may leave the session in any state.

        Every attempt of one notification carries the same Message-ID: when a message is
        handed over twice (the process died after the hand-over and before recording it),
        mail systems recognise the repeat.
        """
        results: list[Exception | None] = [None] * len(messages)
        pending = iter(enumerate(messages))

        async def carry() -> None:
            client: aiosmtplib.SMTP | None = None
            try:
                for index, message in pending:
                    try:
                        if client is None:
                            client = await self._connect()
                        content, options = message.transfer(
                            eight_bit_mime=client.supports_extension("8bitmime")
                        )
                        await client.sendmail(
                            message.sender, [message.recipient], content, mail_options=options
                        )
                    except Exception as error:
                        results[index] = error
                        if client is not None:
                            client.close()
                            client = None
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.quit()
            finally:
                if client is not None and client.is_connected:
                    client.close()

        await asyncio.gather(*(carry() for _ in range(min(connections, len(messages)))))
        return results

    async def _connect(self) -> aiosmtplib.SMTP:
        """A connection that has greeted the server, so its extensions are known."""
        client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout_seconds)
        await client.connect()
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            # A server without ESMTP: plain HELO, and 7-bit bodies.
            await client.helo()
        return client


HEADER_EVENT_TYPE = "X-OMS-Event-Type"
HEADER_EVENT_ID = "X-OMS-Event-Id"
HEADER_SIGNATURE = "X-OMS-Signature"
HEADER_TIMESTAMP = "X-OMS-Timestamp"


async def post_webhook(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    event_type: str,
    event_id: UUID,
    body: bytes,
) -> None:
    """POSTs the event JSON to a subscriber; any answer but 2xx is a failed attempt.

    `X-OMS-Signature` is `sha256=<hex HMAC-SHA256 of the raw body>` under the
    subscription's secret; `X-OMS-Timestamp` is the sending time in Unix seconds.
    """
    response = await client.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            HEADER_EVENT_TYPE: event_type,
            HEADER_EVENT_ID: str(event_id),
            HEADER_SIGNATURE: webhook_signature(secret, body),
            HEADER_TIMESTAMP: str(int(time.time())),
        },
    )
    if not response.is_success:
        raise DeliveryRefused(f"webhook answered HTTP {response.status_code}")
