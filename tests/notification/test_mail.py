"""E-mails written as bytes: headers a mail client reads back as written, the body in the
transfer encoding the server allows, the same Message-ID on every attempt."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

import pytest

from services.notification.mail import (
    EIGHT_BIT_MIME,
    MAX_LINE_OCTETS,
    SMTP_UTF8,
    MailWriter,
    OutgoingMail,
    UnmailableAddress,
)
from services.notification.templates import RenderedMessage

WRITER = MailWriter("notifications@example.com")
FRENCH = RenderedMessage(
    locale="fr",
    subject="Nous avons bien reçu votre commande WS-1001",
    body="Bonjour Zoë Łukasiewicz,\n\nTotal : 49,11\u00a0€\n",
)


def read(mail: OutgoingMail, *, eight_bit_mime: bool = True) -> EmailMessage:
    content, _options = mail.transfer(eight_bit_mime=eight_bit_mime)
    message = BytesParser(policy=default).parsebytes(content)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    """The body as a mail client shows it: lines end as the reader's system ends them."""
    content: str = message.get_content()
    return content.replace("\r\n", "\n")


def header_lines(mail: OutgoingMail) -> list[str]:
    return mail.head.decode().split("\r\n")[:-1]


def test_reads_back_as_written() -> None:
    message = read(WRITER.write("ntf_1", "ada@example.com", FRENCH))

    assert message["From"] == "notifications@example.com"
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == FRENCH.subject
    assert message["Message-ID"] == "<ntf_1@example.com>"
    assert message["Content-Language"] == "fr"
    assert message["Date"].datetime is not None
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert text_of(message) == FRENCH.body


def test_every_attempt_carries_the_same_message_id() -> None:
    first, second = (WRITER.write("ntf_42", "ada@example.com", FRENCH) for _ in range(2))

    assert read(first)["Message-ID"] == read(second)["Message-ID"] == "<ntf_42@example.com>"


def test_a_short_ascii_subject_is_written_as_it_is() -> None:
    mail = WRITER.write("ntf_1", "ada@example.com", RenderedMessage("en", "Your order", "Hi\n"))

    assert "Subject: Your order" in header_lines(mail)


@pytest.mark.parametrize(
    "subject",
    [
        FRENCH.subject,
        "Votre remboursement de 1\u202f234,56\u00a0€ est en route",
        "ご注文 WS-1001 を承りました。発送の準備ができ次第ご連絡いたします 🚚📦",
        "Low stock: " + "SKU-" * 30,
        "An order named =?utf-8?q?like_an_encoded_word?=",
    ],
)
def test_a_subject_outside_short_ascii_goes_in_encoded_words_that_read_back_as_it(
    subject: str,
) -> None:
    mail = WRITER.write("ntf_1", "ada@example.com", RenderedMessage("fr", subject, "x\n"))

    assert read(mail)["Subject"] == subject
    lines = header_lines(mail)
    start = next(i for i, line in enumerate(lines) if line.startswith("Subject: "))
    folded = [lines[start], *(line for line in lines[start + 1 :] if line.startswith(" "))]
    assert all(line.isascii() and len(line) <= 76 for line in folded)


def test_a_sender_name_outside_ascii_is_encoded() -> None:
    writer = MailWriter("Boutique Zoé <shop@example.com>")

    mail = writer.write("ntf_1", "ada@example.com", FRENCH)

    assert mail.head.isascii()
    assert mail.sender == "shop@example.com"
    assert read(mail)["From"] == "Boutique Zoé <shop@example.com>"
    assert read(mail)["Message-ID"] == "<ntf_1@example.com>"


def test_a_utf8_body_goes_8bit_to_a_server_that_takes_it() -> None:
    mail = WRITER.write("ntf_1", "ada@example.com", FRENCH)

    content, options = mail.transfer(eight_bit_mime=True)

    assert b"Content-Transfer-Encoding: 8bit\r\n" in content
    assert "Zoë".encode() in content
    assert options == [EIGHT_BIT_MIME]


def test_a_utf8_body_goes_quoted_printable_to_a_server_that_does_not() -> None:
    mail = WRITER.write("ntf_1", "ada@example.com", FRENCH)

    content, options = mail.transfer(eight_bit_mime=False)

    assert content.isascii()
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in content
    assert options == []
    assert text_of(read(mail, eight_bit_mime=False)) == FRENCH.body


def test_an_ascii_body_goes_7bit_to_any_server() -> None:
    mail = WRITER.write("ntf_1", "ada@example.com", RenderedMessage("en", "Hi", "Hello\n"))

    for eight_bit_mime in (True, False):
        content, options = mail.transfer(eight_bit_mime=eight_bit_mime)
        assert b"Content-Transfer-Encoding: 7bit\r\n" in content
        assert options == []


def test_a_line_too_long_for_smtp_goes_quoted_printable_even_to_an_8bit_server() -> None:
    body = "Zoë " * MAX_LINE_OCTETS + "\nfin\n"
    mail = WRITER.write("ntf_1", "ada@example.com", RenderedMessage("fr", "Hi", body))

    content, options = mail.transfer(eight_bit_mime=True)

    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in content
    assert max(len(line) for line in content.split(b"\r\n")) <= 76
    assert options == []
    assert text_of(read(mail)) == body


def test_every_line_ends_with_crlf_whatever_the_template_ended_it_with() -> None:
    body = "one\ntwo\r\nthree\rfour\n"
    mail = WRITER.write("ntf_1", "ada@example.com", RenderedMessage("en", "Hi", body))

    assert mail.body == b"one\r\ntwo\r\nthree\r\nfour\r\n"


def test_a_recipient_outside_ascii_needs_smtputf8() -> None:
    mail = WRITER.write("ntf_1", "zoë@exämple.com", FRENCH)

    _content, options = mail.transfer(eight_bit_mime=True)

    assert options == [EIGHT_BIT_MIME, SMTP_UTF8]
    assert read(mail)["To"] == "zoë@exämple.com"


@pytest.mark.parametrize(
    "recipient",
    ["ada@example.com, eve@example.com", "Ada <ada@example.com>", "ada@example.com\r\nBcc: x"],
)
def test_a_recipient_that_is_not_a_plain_address_is_refused(recipient: str) -> None:
    with pytest.raises(UnmailableAddress):
        WRITER.write("ntf_1", recipient, FRENCH)
