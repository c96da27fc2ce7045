"""The notification service's use cases.

Consuming an event only RECORDS the notifications it calls for, in the consumed batch's
state (`batch_state.py`), written with the batch's transaction: no network I/O happens
while a database transaction is open. The dispatcher (`dispatcher.py`) delivers them
later and records each outcome here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from uuid6 import uuid7

from contracts.base import Event
from contracts.catalogue import event_class_for
from contracts.events.notification import (
    NotificationChannel,
    NotificationFailed,
    NotificationSent,
    NotificationSkipped,
    NotificationSkipReason,
)
from contracts.events.order import OrderPlaced
from services.kit.batch import Context
from services.kit.logs import get_logger
from services.kit.unit_of_work import Cause, UnitOfWork
from services.notification import db
from services.notification.batch_state import BatchState, NewNotification
from services.notification.domain import (
    WEBHOOK_TEMPLATE,
    AttemptOutcome,
    Audience,
    Channel,
    Contact,
    GiveUp,
    Notification,
    NotificationStatus,
    RetryPolicy,
    SkipReason,
    WebhookSubscription,
)
from services.notification.messages import EMAIL_PLANS, template_variables
from services.notification.templates import RenderedMessage, TemplateCatalogue

log = get_logger(__name__)

MAX_ERROR_LENGTH = 2000
"""NotificationFailed carries at most this much of the last error."""


@dataclass(frozen=True)
class InternalRecipients:
    """The team addresses internal alerts go to."""

    purchasing: str
    operations: str

    def address_of(self, audience: Audience) -> str:
        if audience is Audience.PURCHASING:
            return self.purchasing
        if audience is Audience.OPERATIONS:
            return self.operations
        raise ValueError(f"{audience} is not an internal audience")


def new_notification_id() -> str:
    return f"ntf_{uuid7().hex}"


def new_subscription_id() -> str:
    return f"whs_{uuid7().hex}"


def remember_customer(state: BatchState, event: OrderPlaced) -> None:
    """Keeps how to reach the order's customer, for every later message about the order."""
    state.remember(
        Contact(
            order_id=event.order_id,
            email=event.customer.email,
            name=event.customer.name,
            locale=event.customer.locale,
            channel=event.channel,
            external_order_id=event.external_order_id,
        )
    )


def record_notifications(
    state: BatchState, event: Event, context: Context, recipients: InternalRecipients
) -> None:
    """Records every message the event calls for: an e-mail when the event is one people
    are told about, and one webhook call per subscription to its type.

    A customer e-mail about an order whose OrderPlaced has not arrived yet is recorded
    without an address; the dispatcher sends it once the address is known. One to a
    customer known to have no address is recorded as skipped, with its reason.
    """
    event_type = event.event_type()
    plan = EMAIL_PLANS.get(type(event))
    subscribers = state.subscribers_to(event_type)
    if plan is None and not subscribers:
        return
    payload = event.model_dump_json()

    def notification(
        channel: Channel,
        audience: Audience,
        recipient: str | None,
        template: str,
        *,
        subscription_id: str | None = None,
        skipped: SkipReason | None = None,
    ) -> NewNotification:
        return NewNotification(
            notification_id=new_notification_id(),
            cause_event_id=event.event_id,
            cause_event_type=event_type,
            subject_key=event.subject(),
            channel=channel,
            audience=audience,
            recipient=recipient,
            template=template,
            subscription_id=subscription_id,
            payload=payload,
            status=NotificationStatus.PENDING if skipped is None else NotificationStatus.SKIPPED,
            skip_reason=skipped,
            next_attempt_at=context.now,
        )

    if plan is not None:
        if plan.audience is not Audience.CUSTOMER:
            recipient = recipients.address_of(plan.audience)
            state.record(notification(Channel.EMAIL, plan.audience, recipient, plan.template))
        elif (contact := state.contact_of(event.subject())) is None:
            log.debug("customer address not known yet; the e-mail waits for the order")
            state.record(notification(Channel.EMAIL, plan.audience, None, plan.template))
        elif (skipped := contact.skip_reason()) is not None:
            log.debug("customer e-mail skipped", reason=skipped.value)
            email = notification(Channel.EMAIL, plan.audience, None, plan.template, skipped=skipped)
            state.record(email)
            context.emit(
                NotificationSkipped(
                    subject_key=email.subject_key,
                    notification_id=email.notification_id,
                    cause_event_id=event.event_id,
                    cause_event_type=event_type,
                    channel=NotificationChannel.EMAIL,
                    template=plan.template,
                    reason=NotificationSkipReason(skipped.value),
                )
            )
        else:
            state.record(notification(Channel.EMAIL, plan.audience, contact.email, plan.template))
    for subscriber in subscribers:
        state.record(
            notification(
                Channel.WEBHOOK,
                Audience.SUBSCRIBER,
                subscriber.url,
                WEBHOOK_TEMPLATE,
                subscription_id=subscriber.subscription_id,
            )
        )


async def claim_due(
    uow: UnitOfWork, *, now: datetime, limit: int, lease: timedelta
) -> list[Notification]:
    return await db.claim_due(uow.connection, now=now, limit=limit, lease=lease)


@dataclass(frozen=True)
class DeliveryContext:
    """What the notifications claimed in one round need from the database to be sent."""

    contacts: dict[str, Contact]
    """The customers' contacts, by order id."""
    subscriptions: dict[str, WebhookSubscription]
    """The webhooks' subscriptions that still exist, by id."""


async def delivery_context(
    connection: AsyncConnection, claimed: Sequence[Notification]
) -> DeliveryContext:
    """The contacts and subscriptions of a round, in at most two queries for the round
    instead of one per notification."""
    customer_orders = {
        notification.subject_key
        for notification in claimed
        if notification.channel is Channel.EMAIL and notification.audience is Audience.CUSTOMER
    }
    subscription_ids = {
        notification.subscription_id
        for notification in claimed
        if notification.channel is Channel.WEBHOOK and notification.subscription_id is not None
    }
    return DeliveryContext(
        contacts=await db.contacts_of(connection, customer_orders) if customer_orders else {},
        subscriptions=(
            await db.subscriptions_by_id(connection, subscription_ids) if subscription_ids else {}
        ),
    )


def skip_reason(claimed: Notification, context: DeliveryContext) -> SkipReason | None:
    """Why a claimed notification is not to be sent, if it is not: an e-mail to a
    customer whose order came without an address (learnt after the e-mail was recorded)."""
    if claimed.channel is not Channel.EMAIL or claimed.audience is not Audience.CUSTOMER:
        return None
    contact = context.contacts.get(claimed.subject_key)
    return contact.skip_reason() if contact is not None else None


def compose_email(
    claimed: Notification,
    context: DeliveryContext,
    catalogue: TemplateCatalogue,
    internal_locale: str,
) -> RenderedMessage:
    """The e-mail of a claimed notification, in the customer's language (or the teams'
    language for internal alerts)."""
    event = event_class_for(claimed.cause_event_type).model_validate_json(claimed.payload)
    contact = None
    locale = internal_locale
    if claimed.audience is Audience.CUSTOMER:
        contact = context.contacts.get(claimed.subject_key)
        if contact is None:
            raise LookupError(f"no contact for order {claimed.subject_key}")
        locale = contact.locale
    chosen = catalogue.locale_for(claimed.template, locale)
    return catalogue.render(claimed.template, chosen, template_variables(event, contact, chosen))


async def record_outcomes(
    uow: UnitOfWork, outcomes: Iterable[AttemptOutcome], *, policy: RetryPolicy, now: datetime
) -> None:
    """Records how each attempt ended, in one transaction; each outcome under its own
    cause, so its NotificationSent, NotificationFailed or NotificationSkipped keeps the
    cause's ids."""
    for outcome in outcomes:
        claimed = outcome.notification
        cause = Cause(event_id=claimed.cause_event_id, correlation_id=str(claimed.cause_event_id))
        with uow.caused_by(cause):
            if outcome.skipped is not None:
                await record_skipped(uow, claimed, reason=outcome.skipped, now=now)
            elif outcome.error is None:
                await record_delivered(uow, claimed, now=now)
            elif outcome.final:
                await give_up(uow, claimed, error=outcome.error, now=now)
            else:
                await record_failed_attempt(
                    uow, claimed, error=outcome.error, policy=policy, now=now
                )


async def record_delivered(uow: UnitOfWork, claimed: Notification, *, now: datetime) -> None:
    sent = await db.record_sent(uow.connection, claimed, now=now)
    if sent is None:
        log.warning("delivery outlived its claim", notification_id=claimed.notification_id)
        return
    uow.emit(NotificationSent(**_outcome(sent)))


async def record_skipped(
    uow: UnitOfWork, claimed: Notification, *, reason: SkipReason, now: datetime
) -> None:
    skipped = await db.record_skipped(uow.connection, claimed, reason=reason, now=now)
    if skipped is None:
        log.warning("skip outlived its claim", notification_id=claimed.notification_id)
        return
    uow.emit(
        NotificationSkipped(
            subject_key=skipped.subject_key,
            notification_id=skipped.notification_id,
            cause_event_id=skipped.cause_event_id,
            cause_event_type=skipped.cause_event_type,
            channel=NotificationChannel(skipped.channel.value),
            template=skipped.template,
            reason=NotificationSkipReason(reason.value),
        )
    )


async def record_failed_attempt(
    uow: UnitOfWork, claimed: Notification, *, error: str, policy: RetryPolicy, now: datetime
) -> None:
    """Schedules the next attempt, or gives up after the last one."""
    decision = policy.after_failure(claimed.attempts, now)
    if isinstance(decision, GiveUp):
        await give_up(uow, claimed, error=error, now=now)
        return
    await db.record_retry(
        uow.connection, claimed, error=error, next_attempt_at=decision.moment, now=now
    )


async def give_up(uow: UnitOfWork, claimed: Notification, *, error: str, now: datetime) -> None:
    failed = await db.record_failed(uow.connection, claimed, error=error, now=now)
    if failed is None:
        log.warning("failure outlived its claim", notification_id=claimed.notification_id)
        return
    uow.emit(NotificationFailed(**_outcome(failed), error=error[:MAX_ERROR_LENGTH]))


def _outcome(notification: Notification) -> dict[str, Any]:
    if notification.recipient is None:
        raise ValueError(f"notification {notification.notification_id} has no recipient")
    fields: dict[str, Any] = {
        "subject_key": notification.subject_key,
        "notification_id": notification.notification_id,
        "cause_event_id": notification.cause_event_id,
        "cause_event_type": notification.cause_event_type,
        "channel": NotificationChannel(notification.channel.value),
        "recipient": notification.recipient,
        "template": notification.template,
        "attempts": notification.attempts,
    }
    return fields


@dataclass(frozen=True)
class AlreadySubscribed:
    subscription: WebhookSubscription


async def subscribe_webhook(
    uow: UnitOfWork, *, url: str, secret: str, event_types: Iterable[str]
) -> WebhookSubscription | AlreadySubscribed:
    """A new subscription; a URL is subscribed once (repeating the request is refused)."""
    added = await db.add_subscription(
        uow.connection,
        subscription_id=new_subscription_id(),
        url=url,
        secret=secret,
        event_types=event_types,
    )
    if added is not None:
        return added
    existing = await db.subscription_for_url(uow.connection, url)
    if existing is None:
        raise LookupError(f"subscription to {url} vanished while subscribing")
    return AlreadySubscribed(existing)


async def find_notifications(
    connection: AsyncConnection,
    *,
    subject_key: str | None,
    status: NotificationStatus | None,
    limit: int,
) -> list[Notification]:
    return await db.find_notifications(
        connection, subject_key=subject_key, status=status, limit=limit
    )


async def notification(connection: AsyncConnection, notification_id: str) -> Notification | None:
    return await db.notification(connection, notification_id)


async def list_subscriptions(connection: AsyncConnection) -> list[WebhookSubscription]:
    return await db.subscriptions(connection)


async def unsubscribe_webhook(uow: UnitOfWork, subscription_id: str) -> bool:
    """True when the subscription existed. Webhook calls it still owed fail when due."""
    return await db.remove_subscription(uow.connection, subscription_id)
