"""The notification service's rules, free of I/O: who is told, in which language, how
amounts and dates read in that language, when a failed delivery is tried again, and how a
webhook body is signed."""

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
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class AttemptOutcome:
    """How one delivery attempt ended: delivered when `error` is None, otherwise failed;
    `final` when trying again cannot help (the webhook's subscription was deleted)."""

    notification: Notification
    error: str | None = None
    final: bool = False


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
    email: str
    name: str
    locale: str
    channel: str
    external_order_id: str


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


# Currencies commonly written with a symbol; others are written with their ISO code.
_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
_NO_BREAK_SPACE = "\u00a0"
_NARROW_NO_BREAK_SPACE = "\u202f"


def format_money(amount_minor: int, currency: str, exponent: int, locale: str) -> str:
    """An amount as a reader of the locale's language expects it.

    French: `1 234,56 €` (narrow no-break space between thousands, no-break space before
    the currency); English and every other language: `€1,234.56`, or `CHF 1,234.56`
    when the currency has no common symbol. `exponent` is the currency's number of minor
    digits (2 for EUR, 0 for JPY).
    """
    units, minor = divmod(amount_minor, 10**exponent)
    minor_digits = f"{minor:0{exponent}d}" if exponent else ""
    symbol = _CURRENCY_SYMBOLS.get(currency)
    if language_of(locale) == "fr":
        whole = f"{units:,d}".replace(",", _NARROW_NO_BREAK_SPACE)
        number = f"{whole},{minor_digits}" if exponent else whole
        return f"{number}{_NO_BREAK_SPACE}{symbol or currency}"
    whole = f"{units:,d}"
    number = f"{whole}.{minor_digits}" if exponent else whole
    return f"{symbol}{number}" if symbol else f"{currency}{_NO_BREAK_SPACE}{number}"


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
