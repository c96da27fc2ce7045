"""What a consumed batch reads and records, on the batch's asyncpg connection: the contacts
of the batch's orders and the webhook subscriptions to its event types, read with one
query each; the contacts and notifications it records, written with one statement each.

Nothing the batch reads is changed by it, so nothing is locked: a contact, once written,
is never rewritten (the first OrderPlaced of an order wins), and notifications are new
rows. The contacts are inserted in key order all the same, so two replicas inserting the
same orders (a rebalance) wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.base import Event
from services.notification.domain import (
    Audience,
    Channel,
    Contact,
    NotificationStatus,
    SkipReason,
)
from services.notification.messages import EMAIL_PLANS

_CONTACTS = """
SELECT order_id, email, name, locale, channel, external_order_id
FROM contacts
WHERE order_id = ANY($1::text[])
"""
_SUBSCRIBERS = """
SELECT subscription_id, url, event_types
FROM webhook_subscriptions
WHERE event_types && $1::varchar[]
ORDER BY subscription_id
"""
_REMEMBER_CONTACTS = """
INSERT INTO contacts (order_id, email, name, locale, channel, external_order_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
ON CONFLICT (order_id) DO NOTHING
"""
_RECORD_NOTIFICATIONS = """
INSERT INTO notifications (
    notification_id, cause_event_id, cause_event_type, subject_key, channel, audience,
    recipient, template, subscription_id, payload, status, skip_reason, next_attempt_at
)
SELECT * FROM unnest(
    $1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
    $13::timestamptz[]
)
ON CONFLICT ON CONSTRAINT notifications_one_per_recipient DO NOTHING
"""

_CUSTOMER_EMAILS = frozenset(
    event_type for event_type, plan in EMAIL_PLANS.items() if plan.audience is Audience.CUSTOMER
)
"""The events that e-mail their order's customer: those whose batches need contacts."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A webhook subscription, as recording a notification for it needs it."""

    subscription_id: str
    url: str


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A notification recorded by the batch, to be inserted."""

    notification_id: str
    cause_event_id: UUID
    cause_event_type: str
    subject_key: str
    channel: Channel
    audience: Audience
    recipient: str | None
    template: str
    subscription_id: str | None
    payload: str
    status: NotificationStatus
    skip_reason: SkipReason | None
    next_attempt_at: datetime


@dataclass(slots=True)
class BatchState:
    """The contacts and subscriptions a batch's events need, and what they record."""

    contacts: dict[str, Contact]
    """The known contacts of the batch's orders, by order id; those the batch learns too."""
    subscribers: dict[str, tuple[Subscriber, ...]]
    """The subscribers to each of the batch's event types that has any, in id order."""
    new_contacts: dict[str, Contact] = field(default_factory=dict)
    notifications: list[NewNotification] = field(default_factory=list)

    def contact_of(self, order_id: str) -> Contact | None:
        return self.contacts.get(order_id)

    def remember(self, contact: Contact) -> None:
        """Keeps the order's contact, unless one is known already (the first one stays)."""
        if contact.order_id not in self.contacts:
            self.contacts[contact.order_id] = contact
            self.new_contacts[contact.order_id] = contact

    def subscribers_to(self, event_type: str) -> tuple[Subscriber, ...]:
        return self.subscribers.get(event_type, ())

    def record(self, notification: NewNotification) -> None:
        self.notifications.append(notification)


async def load(
    connection: asyncpg.Connection,
    events: Sequence[Event],
    *,
    may_be_subscribed: Callable[[str], bool],
) -> BatchState:
    """The contacts of the orders whose customer the batch may e-mail, and the subscribers
    to the batch's event types that `may_be_subscribed` does not rule out."""
    customer_orders = sorted(
        {event.subject() for event in events if type(event) in _CUSTOMER_EMAILS}
    )
    event_types = sorted(
        {event_type for event_type in _types_of(events) if may_be_subscribed(event_type)}
    )
    rows = await connection.fetch(_CONTACTS, customer_orders) if customer_orders else []
    return BatchState(
        contacts={row["order_id"]: _contact(row) for row in rows},
        subscribers=await _subscribers(connection, event_types) if event_types else {},
    )


def _types_of(events: Sequence[Event]) -> set[str]:
    return {kind.event_type() for kind in {type(event) for event in events}}


async def _subscribers(
    connection: asyncpg.Connection, event_types: list[str]
) -> dict[str, tuple[Subscriber, ...]]:
    wanted = set(event_types)
    found: dict[str, list[Subscriber]] = {}
    for row in await connection.fetch(_SUBSCRIBERS, event_types):
        subscriber = Subscriber(row["subscription_id"], row["url"])
        for event_type in wanted.intersection(row["event_types"]):
            found.setdefault(event_type, []).append(subscriber)
    return {event_type: tuple(subscribers) for event_type, subscribers in found.items()}


def _contact(row: asyncpg.Record) -> Contact:
    return Contact(
        order_id=row["order_id"],
        email=row["email"],
        name=row["name"],
        locale=row["locale"],
        channel=row["channel"],
        external_order_id=row["external_order_id"],
    )


async def save(connection: asyncpg.Connection, state: BatchState) -> None:
    """Inserts the contacts and notifications the batch recorded; a contact known already,
    or a notification recorded already for the same (event, recipient, channel), is left
    as it is."""
    if state.new_contacts:
        contacts = [state.new_contacts[order_id] for order_id in sorted(state.new_contacts)]
        await connection.execute(
            _REMEMBER_CONTACTS,
            [contact.order_id for contact in contacts],
            [contact.email for contact in contacts],
            [contact.name for contact in contacts],
            [contact.locale for contact in contacts],
            [contact.channel for contact in contacts],
            [contact.external_order_id for contact in contacts],
        )
    if state.notifications:
        rows = state.notifications
        await connection.execute(
            _RECORD_NOTIFICATIONS,
            [row.notification_id for row in rows],
            [row.cause_event_id for row in rows],
            [row.cause_event_type for row in rows],
            [row.subject_key for row in rows],
            [row.channel.value for row in rows],
            [row.audience.value for row in rows],
            [row.recipient for row in rows],
            [row.template for row in rows],
            [row.subscription_id for row in rows],
            [row.payload for row in rows],
            [row.status.value for row in rows],
            [row.skip_reason.value if row.skip_reason is not None else None for row in rows],
            [row.next_attempt_at for row in rows],
        )
