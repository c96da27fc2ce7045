"""The client's CPU per e-mail as the dispatcher sends them: each message composed from its
notification (the event read from the payload, the template's variables, the rendering),
written, and handed over on a few reused connections to a mail server in another process
(so its CPU is not counted). The mix is the benchmark's: per order, the order placed
(every third one with discounts and tax), shipped and delivered, in English and French.

    .venv/bin/python -m tests.notification.email_cost [messages]
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

from contracts.base import Event
from services.notification import service
from services.notification.delivery import SmtpMailer
from services.notification.domain import (
    Audience,
    Channel,
    Contact,
    Notification,
    NotificationStatus,
)
from services.notification.templates import TemplateCatalogue
from tests.notification import samples
from tests.notification.receivers import free_port

CONNECTIONS = 4
"""The service's default number of SMTP connections per round."""


def claimed_emails(count: int) -> tuple[list[Notification], service.DeliveryContext]:
    now = datetime.now(UTC)
    claimed: list[Notification] = []
    contacts: dict[str, Contact] = {}
    for number in range(count // 3):
        order = f"ord_{uuid.uuid4().hex[:12]}"
        locale = "fr" if number % 2 else "en"
        address = f"{order}@example.com"
        placed = (
            samples.discounted_order(order, taxes_included=True, locale=locale)
            if number % 3 == 0
            else samples.order_placed(order, locale=locale, email=address)
        )
        contacts[order] = Contact(order, address, "Zoë Łukasiewicz", locale, "webshop", order)
        told: list[tuple[Event, str]] = [
            (placed, "order_placed"),
            (samples.shipped(order), "order_shipped"),
            (samples.delivered(order), "order_delivered"),
        ]
        claimed.extend(
            Notification(
                notification_id=service.new_notification_id(),
                cause_event_id=event.event_id,
                cause_event_type=event.event_type(),
                subject_key=order,
                channel=Channel.EMAIL,
                audience=Audience.CUSTOMER,
                recipient=address,
                template=template,
                subscription_id=None,
                payload=event.model_dump_json(),
                status=NotificationStatus.PENDING,
                attempts=1,
                next_attempt_at=now,
                last_error=None,
                skip_reason=None,
                created_at=now,
                updated_at=now,
                sent_at=None,
            )
            for event, template in told
        )
    return claimed, service.DeliveryContext(contacts=contacts, subscriptions={})


async def measure(count: int) -> None:
    port = free_port()
    sink = ["-c", "aiosmtpd.handlers.Sink"]
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", *sink]
    )
    try:
        await asyncio.sleep(1.5)  # the server starting
        catalogue = TemplateCatalogue()
        mailer = SmtpMailer("127.0.0.1", port, "notifications@example.com", 10.0)
        for round_name in ("warm-up", "measured"):
            claimed, context = claimed_emails(count)
            started = time.process_time()
            messages = [
                mailer.message(
                    notification.notification_id,
                    recipient_of(notification),
                    service.compose_email(notification, context, catalogue, "en"),
                )
                for notification in claimed
            ]
            composed = time.process_time()
            results = await mailer.send_all(messages, connections=CONNECTIONS)
            sent = time.process_time()
            if any(result is not None for result in results):
                raise RuntimeError(f"not every message was accepted: {results[:3]}")
            per_message = 1000 / len(claimed)
            print(
                f"{round_name}: {len(claimed)} messages, client CPU "
                f"{(sent - started) * per_message:.3f} ms per message "
                f"(composed and written {(composed - started) * per_message:.3f}, "
                f"sent {(sent - composed) * per_message:.3f})"
            )
    finally:
        server.terminate()
        server.wait()


def recipient_of(notification: Notification) -> str:
    if notification.recipient is None:
        raise ValueError("every measured e-mail has its recipient")
    return notification.recipient


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
