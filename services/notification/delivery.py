"""The two ways a message leaves: e-mail over SMTP and HMAC-signed webhook POSTs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from uuid import UUID

import aiosmtplib
import httpx

from services.notification.domain import message_id, webhook_signature
from services.notification.templates import RenderedMessage


class DeliveryRefused(Exception):
    """The receiving end answered, but did not take the message."""


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    from_address: str
    timeout_seconds: float

    def message(self, notification_id: str, to: str, rendered: RenderedMessage) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = to
        message["Subject"] = rendered.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = message_id(notification_id, self.from_address)
        message.set_content(rendered.body)
        # After set_content, which replaces every Content-* header.
        message["Content-Language"] = rendered.locale
        return message

    async def send_all(
        self, messages: Sequence[EmailMessage], *, connections: int
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
                            client = aiosmtplib.SMTP(
                                hostname=self.host, port=self.port, timeout=self.timeout_seconds
                            )
                            await client.connect()
                        await client.send_message(message)
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
