"""The notification rules, without I/O: language choice, dates, retries, skipped
e-mails, signatures."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta

import pytest

from services.notification.domain import (
    Contact,
    GiveUp,
    RetryAt,
    RetryPolicy,
    SkipReason,
    choose_locale,
    format_date,
    locale_candidates,
    message_id,
    webhook_signature,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_regional_locale_falls_back_to_its_language_then_english() -> None:
    assert locale_candidates("fr-CA") == ("fr-CA", "fr", "en")
    assert locale_candidates("fr") == ("fr", "en")
    assert locale_candidates("en") == ("en",)
    assert locale_candidates("en-GB") == ("en-GB", "en")


@pytest.mark.parametrize(
    ("requested", "available", "chosen"),
    [
        ("fr-CA", {"en", "fr"}, "fr"),
        ("fr-CA", {"en", "fr", "fr-CA"}, "fr-CA"),
        ("fr", {"en", "fr"}, "fr"),
        ("de-AT", {"en", "fr"}, "en"),
        ("fr", {"en"}, "en"),
    ],
)
def test_chooses_the_most_specific_locale_a_template_exists_in(
    requested: str, available: set[str], chosen: str
) -> None:
    assert choose_locale(requested, available) == chosen


def test_formats_dates_in_the_reader_language() -> None:
    assert format_date(date(2026, 8, 1), "fr-CA") == "1 août 2026"
    assert format_date(date(2026, 8, 1), "en") == "1 August 2026"
    assert format_date(date(2026, 8, 1), "es") == "1 August 2026"


def contact(email: str | None) -> Contact:
    return Contact(
        order_id="ord_1",
        email=email,
        name=None,
        locale="fr",
        channel="pos",
        external_order_id="POS-1",
    )


def test_a_customer_without_an_email_address_is_not_emailed() -> None:
    assert contact(None).skip_reason() is SkipReason.CUSTOMER_HAS_NO_EMAIL
    assert contact("ada@example.com").skip_reason() is None


def test_retry_delay_doubles_from_the_base_delay() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=timedelta(seconds=1))
    assert [policy.delay_after(attempt).total_seconds() for attempt in range(1, 6)] == [
        1,
        2,
        4,
        8,
        16,
    ]


def test_retry_delay_never_exceeds_an_hour() -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=timedelta(seconds=1))
    assert policy.delay_after(40) == timedelta(hours=1)


def test_retries_until_the_last_attempt_then_gives_up() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=2))
    assert policy.after_failure(1, NOW) == RetryAt(NOW + timedelta(seconds=2))
    assert policy.after_failure(2, NOW) == RetryAt(NOW + timedelta(seconds=4))
    assert policy.after_failure(3, NOW) == GiveUp()


def test_a_retry_follows_an_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=1)).delay_after(0)


def test_signature_is_hex_hmac_sha256_of_the_body() -> None:
    assert webhook_signature("whsec_0123456789abcdef", b'{"event":1}') == (
        "sha256=05de9dbe2c49bf63c9faa7969cab98159f655cfe7f98c3d3b035a4796bc1f46b"
    )


def test_signature_changes_with_the_body_and_the_secret() -> None:
    body = b'{"order_id":"ord_1"}'
    signature = webhook_signature("secret-one-0123456", body)
    expected = hmac.new(b"secret-one-0123456", body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert webhook_signature("secret-two-0123456", body) != signature
    assert webhook_signature("secret-one-0123456", body + b" ") != signature


def test_message_id_is_the_same_for_every_attempt_of_a_notification() -> None:
    assert message_id("ntf_1", "OMS <notifications@shop.example>") == "<ntf_1@shop.example>"
    assert message_id("ntf_1", "notifications@shop.example") == "<ntf_1@shop.example>"
    assert message_id("ntf_2", "notifications@shop.example") != message_id(
        "ntf_1", "notifications@shop.example"
    )
