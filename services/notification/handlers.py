"""Consumed events → recorded notifications. The kit has decoded the event and opened the
unit of work (with the inbox entry that makes redelivery harmless)."""

from __future__ import annotations

from contracts.base import Event
from contracts.catalogue import TOPICS
from contracts.events.order import OrderPlaced
from services.kit.pipeline import Handler, Routes
from services.kit.unit_of_work import UnitOfWork
from services.notification import service
from services.notification.service import InternalRecipients

SERVICE = "notification"


def consumed_events() -> tuple[type[Event], ...]:
    """Every event on the topics the catalogue lists notification as a consumer of: each
    may be told by e-mail, and any may be subscribed to by webhook."""
    return tuple(event for topic in TOPICS if SERVICE in topic.consumers for event in topic.events)


def routes(recipients: InternalRecipients) -> Routes:
    async def on_order_placed(uow: UnitOfWork, event: Event) -> None:
        assert isinstance(event, OrderPlaced)
        await service.remember_customer(uow, event)
        await service.record_notifications(uow, event, recipients)

    async def on_event(uow: UnitOfWork, event: Event) -> None:
        await service.record_notifications(uow, event, recipients)

    handlers: dict[type[Event], Handler] = dict.fromkeys(consumed_events(), on_event)
    handlers[OrderPlaced] = on_order_placed
    return handlers


def subscribable_event_types() -> frozenset[str]:
    """The CloudEvents types a webhook may subscribe to (`oms.Shipped.v1`, ...)."""
    return frozenset(event.event_type() for event in consumed_events())
