"""The notification service's rules, free of I/O: who is told, in which language, how
dates read in that language, when a failed delivery is tried again, when a message is not
sent at all, and how a webhook body is signed."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from uuid import UUID

DEFAULT_LOCALE = "en"
MAX_RETRY_DELAY = timedelta(hours=1)
"""However many attempts a notification has had, the next one is at most this far away."""


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not sent, and never will be, for a reason that is not a failure (`SkipReason`)."""


class SkipReason(StrEnum):
    """Why a notification is not sent."""

    CUSTOMER_HAS_NO_EMAIL = "customer_has_no_email"
    """The order came without a customer e-mail address (a point-of-sale or draft order)."""


class Audience(StrEnum):
    """Whom a notification is for; the recipient address follows from it."""

    CUSTOMER = "customer"
    PURCHASING = "purchasing"
    OPERATIONS = "operations"
    SUBSCRIBER = "subscriber"


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


WEBHOOK_TEMPLATE = "webhook"
"""The template name webhook notifications carry: their body is the event itself."""


@dataclass(frozen=True)
class Notification:
    """One message to one recipient over one channel, prompted by one event."""

    notification_id: str
    cause_event_id: UUID
    cause_event_type: str
    subject_key: str
    channel: Channel
    audience: Audience
    recipient: str | None
    """None while the customer's address is not known yet (their order was not seen)."""
    template: str
    subscription_id: str | None
    payload: str
    """The cause event's JSON: the webhook body, and what e-mail templates are filled from."""
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    skip_reason: SkipReason | None
    """Why it was not sent, when its status is SKIPPED."""
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class AttemptOutcome:
    """How one delivery attempt ended: delivered when neither `error` nor `skipped` is
    set; failed when `error` is, `final` when trying again cannot help (the webhook's
    subscription was deleted); not sent at all, for good, when `skipped` says why."""

    notification: Notification
    error: str | None = None
    final: bool = False
    skipped: SkipReason | None = None


@dataclass(frozen=True)
class WebhookSubscription:
    subscription_id: str
    url: str
    secret: str
    event_types: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class Contact:
    """How to reach the customer of one order, remembered from its OrderPlaced."""

    order_id: str
    email: str | None
    """None when the order came without one: nothing is e-mailed to the customer then."""
    name: str | None
    locale: str
    channel: str
    external_order_id: str

    def skip_reason(self) -> SkipReason | None:
        """Why an e-mail to this customer is not sent, if it is not."""
        return SkipReason.CUSTOMER_HAS_NO_EMAIL if self.email is None else None


@dataclass(frozen=True)
class EmailPlan:
    """An event that is told by e-mail: with which template, to whom."""

    template: str
    audience: Audience


def locale_candidates(locale: str) -> tuple[str, ...]:
    """The locales to try for a message, most specific first: `fr-CA` → fr-CA, fr, en."""
    candidates = [locale]
    language = language_of(locale)
    if language != locale:
        candidates.append(language)
    if DEFAULT_LOCALE not in candidates:
        candidates.append(DEFAULT_LOCALE)
    return tuple(candidates)


def choose_locale(requested: str, available: Collection[str]) -> str:
    """The first candidate locale a template exists in; the default locale when none does
    (every template exists in the default locale)."""
    for candidate in locale_candidates(requested):
        if candidate in available:
            return candidate
    return DEFAULT_LOCALE


def language_of(locale: str) -> str:
    return locale.split("-", 1)[0]


_MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
}


def format_date(day: date, locale: str) -> str:
    """`22 novembre 2026` in French, `22 November 2026` in English and other languages."""
    months = _MONTHS.get(language_of(locale), _MONTHS[DEFAULT_LOCALE])
    return f"{day.day} {months[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class RetryAt:
    moment: datetime


@dataclass(frozen=True)
class GiveUp:
    pass


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` deliveries of a notification; after a failed one, wait the
    base delay, doubled after every further failure (1 s, 2 s, 4 s, ...), at most an hour."""

    max_attempts: int
    base_delay: timedelta

    def delay_after(self, attempts: int) -> timedelta:
        if attempts < 1:
            raise ValueError("a retry follows at least one attempt")
        delay: timedelta = self.base_delay * 2 ** (attempts - 1)
        return min(delay, MAX_RETRY_DELAY)

    def after_failure(self, attempts: int, now: datetime) -> RetryAt | GiveUp:
        """What follows the `attempts`-th failed delivery: another try later, or none."""
        if attempts >= self.max_attempts:
            return GiveUp()
        return RetryAt(now + self.delay_after(attempts))


SIGNATURE_SCHEME = "sha256"


def webhook_signature(secret: str, body: bytes) -> str:
    """The `X-OMS-Signature` header value: `sha256=<hex HMAC-SHA256 of the body>`.

    A receiver recomputes it over the raw body it received with the shared secret and
    compares with `hmac.compare_digest`.
    """
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def message_id(notification_id: str, from_address: str) -> str:
    """A Message-ID that is the same for every attempt of one notification, so a mail
    system that receives a repeat (after a crash between sending and recording) can drop
    it."""
    domain = from_address.rsplit("@", 1)[-1].strip(" >") or "localhost"
    return f"<{notification_id}@{domain}>"
