"""The notification service's tables and the queries on them."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    UniqueConstraint,
    Update,
    Uuid,
    any_,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notification.domain import (
    Audience,
    Channel,
    Contact,
    Notification,
    NotificationStatus,
    SkipReason,
    WebhookSubscription,
)

metadata = MetaData()

contacts = Table(
    "contacts",
    metadata,
    Column("order_id", String(64), primary_key=True),
    # Either may be absent: a point-of-sale or draft order may come without them.
    Column("email", String(254)),
    Column("name", String(200)),
    Column("locale", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("external_order_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("url", String(512), nullable=False, unique=True),
    Column("secret", String(256), nullable=False),
    Column("event_types", ARRAY(String(128)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("cause_event_id", Uuid, nullable=False),
    Column("cause_event_type", String(128), nullable=False),
    Column("subject_key", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("audience", String(16), nullable=False),
    Column("recipient", String(512)),
    Column("template", String(128), nullable=False),
    Column("subscription_id", String(64)),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("skip_reason", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    # One message per (event, recipient, channel). NULLS NOT DISTINCT: a customer whose
    # address is not known yet is still one recipient.
    UniqueConstraint(
        "cause_event_id",
        "recipient",
        "channel",
        name="notifications_one_per_recipient",
        postgresql_nulls_not_distinct=True,
    ),
)
Index(
    "notifications_due",
    notifications.c.next_attempt_at,
    postgresql_where=text("status = 'pending'"),
)
Index("notifications_by_subject", notifications.c.subject_key, notifications.c.created_at)


_CONTACTS = select(contacts).where(
    contacts.c.order_id == any_(bindparam("order_ids", type_=ARRAY(String)))
)


async def contacts_of(connection: AsyncConnection, order_ids: Iterable[str]) -> dict[str, Contact]:
    """The known contacts of these orders, by order id, in one query."""
    rows = await connection.execute(_CONTACTS, {"order_ids": sorted(set(order_ids))})
    return {row.order_id: _contact(row._mapping) for row in rows}


def _contact(row: RowMapping) -> Contact:
    return Contact(
        order_id=row["order_id"],
        email=row["email"],
        name=row["name"],
        locale=row["locale"],
        channel=row["channel"],
        external_order_id=row["external_order_id"],
    )


_DUE = (
    select(notifications.c.notification_id)
    .where(
        notifications.c.status == NotificationStatus.PENDING.value,
        notifications.c.next_attempt_at <= bindparam("now"),
        notifications.c.recipient.is_not(None)
        | exists().where(contacts.c.order_id == notifications.c.subject_key),
    )
    .order_by(notifications.c.next_attempt_at)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True, of=notifications)
    .cte("due")
)
_CLAIM_DUE = (
    update(notifications)
    .where(notifications.c.notification_id == _DUE.c.notification_id)
    .values(
        attempts=notifications.c.attempts + 1,
        next_attempt_at=bindparam("next_attempt_at"),
        recipient=func.coalesce(
            notifications.c.recipient,
            select(contacts.c.email)
            .where(contacts.c.order_id == notifications.c.subject_key)
            .scalar_subquery(),
        ),
        updated_at=bindparam("now"),
    )
    .returning(*notifications.c)
)


async def claim_due(
    connection: AsyncConnection, *, now: datetime, limit: int, lease: timedelta
) -> list[Notification]:
    """Takes up to `limit` due notifications for one delivery attempt each.

    The rows are locked with SKIP LOCKED, so replicas claiming at the same moment take
    different rows; each claimed row counts the attempt and moves its next attempt a
    lease away, so nobody else takes it while this attempt is under way, and it comes
    back by itself if this process dies before recording the outcome. A customer
    notification waits until the customer's address is known, then takes it.
    """
    claimed = await connection.execute(
        _CLAIM_DUE, {"now": now, "limit": limit, "next_attempt_at": now + lease}
    )
    return [_notification(row._mapping) for row in claimed]


async def record_sent(
    connection: AsyncConnection, claimed: Notification, *, now: datetime
) -> Notification | None:
    """Marks the claimed attempt sent; None when the claim was lost (another replica
    took the notification after this attempt outlived its lease)."""
    return await _close_attempt(
        connection, claimed, status=NotificationStatus.SENT, last_error=None, sent_at=now, now=now
    )


async def record_retry(
    connection: AsyncConnection,
    claimed: Notification,
    *,
    error: str,
    next_attempt_at: datetime,
    now: datetime,
) -> Notification | None:
    return await _close_attempt(
        connection,
        claimed,
        status=NotificationStatus.PENDING,
        last_error=error,
        next_attempt_at=next_attempt_at,
        now=now,
    )


async def record_failed(
    connection: AsyncConnection, claimed: Notification, *, error: str, now: datetime
) -> Notification | None:
    return await _close_attempt(
        connection, claimed, status=NotificationStatus.FAILED, last_error=error, now=now
    )


async def record_skipped(
    connection: AsyncConnection, claimed: Notification, *, reason: SkipReason, now: datetime
) -> Notification | None:
    """Marks the claimed notification skipped for good; the claim counted an attempt that
    was not made, so it is given back."""
    return await _close_attempt(
        connection,
        claimed,
        status=NotificationStatus.SKIPPED,
        last_error=None,
        now=now,
        skip_reason=reason.value,
        attempts=claimed.attempts - 1,
    )


@functools.cache
def _close_attempt_statement(columns: tuple[str, ...]) -> Update:
    return (
        update(notifications)
        .where(
            notifications.c.notification_id == bindparam("key_notification_id"),
            notifications.c.status == NotificationStatus.PENDING.value,
            notifications.c.attempts == bindparam("key_attempts"),
        )
        .values(
            {name: bindparam(name) for name in ("status", "last_error", "updated_at", *columns)}
        )
        .returning(*notifications.c)
    )


async def _close_attempt(
    connection: AsyncConnection,
    claimed: Notification,
    *,
    status: NotificationStatus,
    last_error: str | None,
    now: datetime,
    **changes: Any,
) -> Notification | None:
    row = (
        await connection.execute(
            _close_attempt_statement(tuple(changes)),
            {
                "key_notification_id": claimed.notification_id,
                "key_attempts": claimed.attempts,
                "status": status.value,
                "last_error": last_error,
                "updated_at": now,
                **changes,
            },
        )
    ).first()
    return _notification(row._mapping) if row is not None else None


async def notification(connection: AsyncConnection, notification_id: str) -> Notification | None:
    row = (
        await connection.execute(
            select(notifications).where(notifications.c.notification_id == notification_id)
        )
    ).first()
    return _notification(row._mapping) if row is not None else None


async def find_notifications(
    connection: AsyncConnection,
    *,
    subject_key: str | None,
    status: NotificationStatus | None,
    limit: int,
) -> list[Notification]:
    query = select(notifications).order_by(
        notifications.c.created_at, notifications.c.notification_id
    )
    if subject_key is not None:
        query = query.where(notifications.c.subject_key == subject_key)
    if status is not None:
        query = query.where(notifications.c.status == status.value)
    rows = await connection.execute(query.limit(limit))
    return [_notification(row._mapping) for row in rows]


def _notification(row: RowMapping) -> Notification:
    return Notification(
        notification_id=row["notification_id"],
        cause_event_id=row["cause_event_id"],
        cause_event_type=row["cause_event_type"],
        subject_key=row["subject_key"],
        channel=Channel(row["channel"]),
        audience=Audience(row["audience"]),
        recipient=row["recipient"],
        template=row["template"],
        subscription_id=row["subscription_id"],
        payload=row["payload"],
        status=NotificationStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        skip_reason=SkipReason(row["skip_reason"]) if row["skip_reason"] is not None else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sent_at=row["sent_at"],
    )


_ADD_SUBSCRIPTION = (
    pg_insert(webhook_subscriptions)
    .values({name: bindparam(name) for name in ("subscription_id", "url", "secret", "event_types")})
    .on_conflict_do_nothing(index_elements=[webhook_subscriptions.c.url])
    .returning(*webhook_subscriptions.c)
)


async def add_subscription(
    connection: AsyncConnection,
    *,
    subscription_id: str,
    url: str,
    secret: str,
    event_types: Iterable[str],
) -> WebhookSubscription | None:
    """The new subscription; None when the URL is subscribed already."""
    row = (
        await connection.execute(
            _ADD_SUBSCRIPTION,
            {
                "subscription_id": subscription_id,
                "url": url,
                "secret": secret,
                "event_types": list(event_types),
            },
        )
    ).first()
    return _subscription(row._mapping) if row is not None else None


async def subscription_for_url(connection: AsyncConnection, url: str) -> WebhookSubscription | None:
    row = (
        await connection.execute(
            select(webhook_subscriptions).where(webhook_subscriptions.c.url == url)
        )
    ).first()
    return _subscription(row._mapping) if row is not None else None


_SUBSCRIPTIONS_BY_ID = select(webhook_subscriptions).where(
    webhook_subscriptions.c.subscription_id
    == any_(bindparam("subscription_ids", type_=ARRAY(String)))
)


async def subscriptions_by_id(
    connection: AsyncConnection, subscription_ids: Iterable[str]
) -> dict[str, WebhookSubscription]:
    """The subscriptions that still exist among these, by id, in one query."""
    rows = await connection.execute(
        _SUBSCRIPTIONS_BY_ID, {"subscription_ids": sorted(set(subscription_ids))}
    )
    return {row.subscription_id: _subscription(row._mapping) for row in rows}


_SUBSCRIBED_EVENT_TYPES = select(func.unnest(webhook_subscriptions.c.event_types)).distinct()


async def subscribed_event_types(connection: AsyncConnection) -> frozenset[str]:
    """Every event type some webhook subscription names."""
    return frozenset((await connection.execute(_SUBSCRIBED_EVENT_TYPES)).scalars())


async def subscriptions(connection: AsyncConnection) -> list[WebhookSubscription]:
    rows = await connection.execute(
        select(webhook_subscriptions).order_by(webhook_subscriptions.c.created_at)
    )
    return [_subscription(row._mapping) for row in rows]


_REMOVE_SUBSCRIPTION = (
    delete(webhook_subscriptions)
    .where(webhook_subscriptions.c.subscription_id == bindparam("subscription_id"))
    .returning(webhook_subscriptions.c.subscription_id)
)


async def remove_subscription(connection: AsyncConnection, subscription_id: str) -> bool:
    removed = await connection.execute(_REMOVE_SUBSCRIPTION, {"subscription_id": subscription_id})
    return removed.first() is not None


def _subscription(row: RowMapping) -> WebhookSubscription:
    return WebhookSubscription(
        subscription_id=row["subscription_id"],
        url=row["url"],
        secret=row["secret"],
        event_types=tuple(row["event_types"]),
        created_at=row["created_at"],
    )
