"""Consumed events → recorded notifications, a batch at a time. The kit has decoded the
events, taken their ids into the inbox (which makes redelivery harmless) and opened the
batch's transaction; `batch_state` loads what the batch needs and saves what it records."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from contracts.base import Event
from contracts.catalogue import TOPICS
from contracts.events.order import OrderPlaced
from services.kit.batch import Context, Router
from services.notification import batch_state, service
from services.notification.batch_state import BatchState
from services.notification.service import InternalRecipients
from services.notification.subscribed_types import SubscribedTypes

SERVICE = "notification"


def consumed_events() -> tuple[type[Event], ...]:
    """Every event on the topics the catalogue lists notification as a consumer of: each
    may be told by e-mail, and any may be subscribed to by webhook."""
    return tuple(event for topic in TOPICS if SERVICE in topic.consumers for event in topic.events)


def router(recipients: InternalRecipients, subscribed: SubscribedTypes) -> Router[BatchState]:
    async def load(connection: asyncpg.Connection, events: Sequence[Event]) -> BatchState:
        return await batch_state.load(connection, events, may_be_subscribed=subscribed.may_include)

    consumed: Router[BatchState] = Router(load=load, save=batch_state.save, wanted=subscribed.reads)

    @consumed.on(OrderPlaced)
    def on_order_placed(state: BatchState, event: OrderPlaced, context: Context) -> None:
        service.remember_customer(state, event)
        service.record_notifications(state, event, context, recipients)

    def on_event(state: BatchState, event: Event, context: Context) -> None:
        service.record_notifications(state, event, context, recipients)

    for event_type in consumed_events():
        if event_type is not OrderPlaced:
            consumed.on(event_type)(on_event)
    return consumed


def subscribable_event_types() -> frozenset[str]:
    """The CloudEvents types a webhook may subscribe to (`oms.Shipped.v1`, ...)."""
    return frozenset(event.event_type() for event in consumed_events())
