"""Consumed batches applied to a notification database as the kit's pipeline applies them
(the service's router, in one transaction, with the outbox), without Kafka and without the
inbox: what a batch records is then the router's doing alone."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from opentelemetry import trace

from contracts.base import Event
from contracts.catalogue import topic_of
from services.kit.batch import BatchWork, Consumed, Router
from services.kit.dead_letters import ConsumedRecord
from services.kit.emitted import Cause, OutboxRow
from services.kit.topics import TopicNames
from services.notification.batch_state import BatchState
from services.notification.handlers import router
from services.notification.service import InternalRecipients
from services.notification.subscribed_types import SubscribedTypes

RECIPIENTS = InternalRecipients("purchasing@example.com", "operations@example.com")


def every_type_read() -> SubscribedTypes:
    """Subscribed types never read: every type may be subscribed, as at a service's start."""
    return SubscribedTypes(refresh_seconds=60)


def notification_router(subscribed: SubscribedTypes | None = None) -> Router[BatchState]:
    return router(RECIPIENTS, subscribed or every_type_read())


async def apply_batch(
    connection: asyncpg.Connection, events: Sequence[Event], consumed: Router[BatchState]
) -> list[OutboxRow]:
    """Applies the events as one consumed batch, in the order given, and commits; returns
    the events it emitted."""
    work = BatchWork(
        connection,
        source="/test",
        topic_for=TopicNames().of_event,
        tracer=trace.get_tracer(__name__),
        service="notification",
    )
    batch = [
        Consumed(
            event=event,
            cause=Cause(event_id=event.event_id, correlation_id=str(event.event_id)),
            record=ConsumedRecord(topic_of(type(event)), 0, offset, None, b"", ()),
            headers={},
        )
        for offset, event in enumerate(events)
    ]
    try:
        async with connection.transaction():
            await consumed.apply(work, batch)
            await work.record_outbox()
    finally:
        for span in work.spans:
            span.end()
    return work.events.rows
