"""The operations view's subscribers: every event of every catalogue topic is projected,
and the events below feed projections of their own besides. Records that are not valid
events are the owning service's to dead-letter; this read side only notes them and moves
on (it must never produce dead letters of its own for another service's bad input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from opentelemetry import trace

from contracts.base import Event
from contracts.catalogue import TOPICS
from contracts.events.inventory import LowStockDetected, StockRestocked
from contracts.events.notification import NotificationFailed
from contracts.events.order import OrderPlaced, OrderRejected
from contracts.events.returns import ReturnRequested
from contracts.wire import InvalidEvent
from services.kit.batch import Context, Router
from services.kit.dead_letters import ConsumedRecord
from services.kit.logs import get_logger
from services.kit.pipeline import InvalidRecordHandler
from services.kit.unit_of_work import UnitOfWork
from services.operations import batch_state, service
from services.operations.batch_state import Projections

log = get_logger(__name__)

E = TypeVar("E", bound=Event)


def current_trace_id() -> str | None:
    """The trace the consumed record belongs to: the kit applies each event inside its
    consumer span, a child of the record's `traceparent` (sampled or not, it carries the
    trace's id)."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def with_trace_id(
    project: Callable[[Projections, E, str | None], None],
) -> Callable[[Projections, E, Context], None]:
    """A projection as the router's use case, given the trace of the event's record."""

    def apply(projections: Projections, event: E, _context: Context) -> None:
        project(projections, event, current_trace_id())

    return apply


def router() -> Router[Projections]:
    router: Router[Projections] = Router(load=batch_state.load, save=batch_state.save)
    router.on(OrderPlaced)(with_trace_id(service.project_order_placed))
    router.on(OrderRejected)(with_trace_id(service.project_order_rejected))
    router.on(ReturnRequested)(with_trace_id(service.project_return_requested))
    router.on(LowStockDetected)(with_trace_id(service.project_low_stock))
    router.on(StockRestocked)(with_trace_id(service.project_restock))
    router.on(NotificationFailed)(with_trace_id(service.project_notification_failure))
    for topic in TOPICS:
        for event in topic.events:
            if not router.applies(event.event_type()):
                router.on(event)(with_trace_id(service.project))
    return router


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
