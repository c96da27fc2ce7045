"""E-mail hand-over to a real SMTP server (aiosmtpd on 127.0.0.1): a round's messages
share a few connections, a refused or unreachable one fails alone, and every e-mail reads
as the standard library's EmailMessage of the same content reads, whatever the server
takes (8-bit bodies or not, ESMTP or not)."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
import pytest

from contracts.base import Event
from services.notification.delivery import SmtpMailer
from services.notification.domain import Audience, Contact, message_id
from services.notification.mail import OutgoingMail
from services.notification.messages import EMAIL_PLANS, template_variables
from services.notification.templates import RenderedMessage, TemplateCatalogue
from tests.notification import samples
from tests.notification.receivers import REFUSED_MAILBOX_PREFIX, free_port, smtp_server


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(
        host="127.0.0.1", port=port, from_address="notifications@example.com", timeout_seconds=2
    )


def messages(sender: SmtpMailer, recipients: list[str]) -> list[OutgoingMail]:
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


CUSTOMER = Contact(
    order_id="ord_42",
    email="zoe@example.com",
    name="Zoë Łukasiewicz-Müller",
    locale="fr",
    channel="webshop",
    external_order_id="WS-1001",
)
SENDER = "Boutique Zoé <notifications@example.com>"


def every_email() -> list[RenderedMessage]:
    """Every template in English and French, filled for a customer whose name is not ASCII,
    and a body with lines SMTP cannot carry as they are (too long; a lone dot)."""
    catalogue = TemplateCatalogue()
    events: list[Event] = [
        samples.discounted_order("ord_42", taxes_included=True),
        samples.yen_order("ord_42"),
        samples.order_cancelled("ord_42"),
        samples.shipped("ord_42"),
        samples.delivered("ord_42"),
        samples.return_approved("ord_42"),
        samples.return_rejected("ord_42"),
        samples.refund_with_breakdown("ord_42"),
        samples.low_stock(),
        samples.stock_reservation_failed("ord_42"),
    ]
    rendered = []
    for event in events:
        plan = EMAIL_PLANS[type(event)]
        for locale in ("en", "fr"):
            contact = dataclasses.replace(CUSTOMER, locale=locale)
            customer = contact if plan.audience is Audience.CUSTOMER else None
            variables = template_variables(event, customer, locale)
            rendered.append(catalogue.render(plan.template, locale, variables))
    rendered.append(RenderedMessage("fr", "Très long", "Zoë " * 400 + "\n.\n..\nfin \n"))
    return rendered


def standard_message(notification_id: str, to: str, rendered: RenderedMessage) -> EmailMessage:
    """The e-mail as the standard library's EmailMessage builds it."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(notification_id, SENDER)
    message.set_content(rendered.body)
    message["Content-Language"] = rendered.locale
    return message


def as_read(message: EmailMessage) -> dict[str, object]:
    """What a reader sees of a received message."""
    return {
        "from": message["From"],
        "to": message["To"],
        "subject": message["Subject"],
        "message-id": message["Message-ID"],
        "language": message["Content-Language"],
        "type": message.get_content_type(),
        "charset": message.get_content_charset(),
        # Lines as the reader sees them: a body sent 8-bit reads back with the CRLF it
        # travelled with, one the standard library sent in base64 with bare LFs.
        "text": message.get_content().replace("\r\n", "\n"),
        "dated": message["Date"].datetime is not None,
    }


@pytest.mark.parametrize(
    "server",
    [
        {"eight_bit_mime": True},
        {"eight_bit_mime": False},
        {"esmtp": False},
    ],
    ids=["8bit", "7bit", "helo"],
)
async def test_every_email_reads_as_the_standard_librarys_message_would(
    server: dict[str, bool],
) -> None:
    emails = every_email()
    recipient = "zoe@example.com"
    with smtp_server(**server) as (written, port), smtp_server(**server) as (standard, other):
        sender = SmtpMailer("127.0.0.1", port, SENDER, 2)
        mails = [sender.message(f"ntf_{n}", recipient, email) for n, email in enumerate(emails)]
        assert await sender.send_all(mails, connections=2) == [None] * len(emails)
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=other) as client:
            for n, email in enumerate(emails):
                await client.send_message(standard_message(f"ntf_{n}", recipient, email))

    assert len(written.messages) == len(standard.messages) == len(emails)
    by_id = {message["Message-ID"]: as_read(message) for message in standard.messages}
    for message in written.messages:
        assert as_read(message) == by_id[message["Message-ID"]]


async def test_a_recipient_outside_ascii_is_mailed_where_the_server_takes_smtputf8() -> None:
    recipient = "zoë@exämple.com"
    rendered = RenderedMessage(subject="Votre commande", body="Bonjour Zoë\n", locale="fr")
    with smtp_server(smtputf8=True) as (mail, port):
        sender = mailer(port)
        results = await sender.send_all(
            [sender.message("ntf_1", recipient, rendered)], connections=1
        )
    assert results == [None]
    [received] = mail.messages
    assert received["To"] == recipient
    assert received.get_content() == "Bonjour Zoë\r\n"


async def test_a_recipient_outside_ascii_fails_where_the_server_does_not_take_smtputf8() -> None:
    rendered = RenderedMessage(subject="Votre commande", body="Bonjour\n", locale="fr")
    with smtp_server() as (mail, port):
        sender = mailer(port)
        [result] = await sender.send_all(
            [sender.message("ntf_1", "zoë@exämple.com", rendered)], connections=1
        )
    assert isinstance(result, aiosmtplib.SMTPNotSupported)
    assert mail.messages == []
