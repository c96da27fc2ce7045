"""The operations view's subscribers: every event of every catalogue topic goes to one
projection use case. Records that are not valid events are the owning service's to
dead-letter; this read side only notes them and moves on (it must never produce dead
letters of its own for another service's bad input)."""

from __future__ import annotations

from opentelemetry import trace

from contracts.base import Event
from contracts.catalogue import TOPICS
from contracts.wire import InvalidEvent
from services.kit.dead_letters import ConsumedRecord
from services.kit.logs import get_logger
from services.kit.pipeline import InvalidRecordHandler, Routes
from services.kit.unit_of_work import UnitOfWork
from services.operations import service

log = get_logger(__name__)


def current_trace_id() -> str | None:
    """The trace the consumed record belongs to: the kit's consumer pipeline opens the
    consumer span as a child of the record's `traceparent`."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


async def on_event(uow: UnitOfWork, event: Event) -> None:
    await service.project(uow, event, trace_id=current_trace_id())


def routes() -> Routes:
    return {event: on_event for topic in TOPICS for event in topic.events}


def invalid_record_handler() -> InvalidRecordHandler:
    async def note(_uow: UnitOfWork, record: ConsumedRecord, error: InvalidEvent) -> bool:
        log.info(
            "invalid record left to its owner's dead-letter topic",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=str(error)[:300],
        )
        return True

    return note
