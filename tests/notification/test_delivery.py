"""E-mail hand-over to a real SMTP server (aiosmtpd on 127.0.0.1): a round's messages
share a few connections, and a refused or unreachable one fails alone."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from services.notification.delivery import SmtpMailer
from services.notification.templates import RenderedMessage
from tests.notification.receivers import REFUSED_MAILBOX_PREFIX, free_port, smtp_server


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(
        host="127.0.0.1", port=port, from_address="notifications@example.com", timeout_seconds=2
    )


def messages(sender: SmtpMailer, recipients: list[str]) -> list[EmailMessage]:
    rendered = RenderedMessage(subject="Your order", body="Hello", locale="en")
    return [
        sender.message(f"ntf_{index}", recipient, rendered)
        for index, recipient in enumerate(recipients)
    ]


async def test_a_round_of_messages_shares_at_most_the_allowed_connections() -> None:
    recipients = [f"customer-{index}@example.com" for index in range(10)]
    with smtp_server() as (mail, port):
        sender = mailer(port)

        results = await sender.send_all(messages(sender, recipients), connections=3)

    assert results == [None] * 10
    assert sorted(message["To"] for message in mail.messages) == sorted(recipients)
    assert 1 <= len(set(mail.connections)) <= 3


async def test_a_refused_recipient_fails_alone_and_the_rest_are_delivered() -> None:
    refused = f"{REFUSED_MAILBOX_PREFIX}-4@example.com"
    recipients = [f"customer-{index}@example.com" for index in range(4)]
    recipients += [refused, "customer-5@example.com", "customer-6@example.com"]
    with smtp_server() as (mail, port):
        sender = mailer(port)

        results = await sender.send_all(messages(sender, recipients), connections=1)

    assert isinstance(results[4], aiosmtplib.SMTPRecipientsRefused)
    assert [result for index, result in enumerate(results) if index != 4] == [None] * 6
    assert sorted(message["To"] for message in mail.messages) == sorted(
        recipient for recipient in recipients if recipient != refused
    )
    # The refused transaction's connection was dropped; the next message opened another.
    assert len(set(mail.connections)) == 2


async def test_an_unreachable_mail_server_fails_every_message_without_raising() -> None:
    sender = mailer(free_port())

    results = await sender.send_all(
        messages(sender, ["a@example.com", "b@example.com", "c@example.com"]), connections=2
    )

    assert len(results) == 3
    assert all(isinstance(result, aiosmtplib.SMTPConnectError) for result in results)


async def test_no_messages_open_no_connection() -> None:
    assert await mailer(free_port()).send_all([], connections=4) == []
