"""The order service's reactions to consumed events: one thin function per event type
(decoding is done by the kit), each calling one use case; and the answer to a channel
record that breaks the inbound contract.

Every consumed event about a known order also joins the order's timeline, in the same
transaction; the events the service only shows (StockCommitted, ShipmentPacked, ...) have
a timeline-only handler. LowStockDetected is about a SKU, never an order: not routed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from contracts.base import Event
from contracts.events.channel import OrderSubmitted
from contracts.events.fulfilment import (
    Delivered,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentPacked,
    ShipmentReplanned,
    Shipped,
)
from contracts.events.inventory import (
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockRestocked,
)
from contracts.events.notification import (
    NotificationFailed,
    NotificationSent,
    NotificationSkipped,
)
from contracts.events.returns import (
    RefundIssued,
    ReturnApproved,
    Returned,
    ReturnReceived,
    ReturnRejected,
    ReturnRequested,
)
from contracts.wire import HEADER_ID, InvalidEvent, header_map
from services.kit.dead_letters import ConsumedRecord
from services.kit.pipeline import Handler, InvalidRecordHandler, Routes
from services.kit.unit_of_work import UnitOfWork
from services.order import service
from services.order.service import ChangeCause, IntakePolicy

EventT = TypeVar("EventT", bound=Event)

CHANNEL_ACTOR = "channel"


def routes(policy: IntakePolicy) -> Routes:
    async def on_order_submitted(uow: UnitOfWork, event: OrderSubmitted) -> None:
        # The intake records the submission in the timeline itself: only it knows the
        # order id the submission became.
        cause = ChangeCause(actor=CHANNEL_ACTOR, event_id=event.event_id)
        await service.submit_order(uow, event, policy, cause)

    return dict(
        [
            (OrderSubmitted, _typed(OrderSubmitted, on_order_submitted)),
            _route(StockReserved, service.confirm_order),
            _route(StockReservationFailed, service.cancel_for_shortage),
            _route(StockReleased, _timeline_only),
            _route(StockCommitted, _timeline_only),
            _route(StockRestocked, _timeline_only),
            _route(ShipmentCreated, service.record_shipment_created),
            _route(ShipmentReplanned, service.record_shipment_replanned),
            _route(ShipmentPacked, _timeline_only),
            _route(Shipped, service.record_shipped),
            _route(Delivered, service.record_delivered),
            _route(ShipmentCancelled, service.record_shipment_cancelled),
            _route(ReturnRequested, service.record_return_requested),
            _route(ReturnApproved, _timeline_only),
            _route(ReturnRejected, service.record_return_rejected),
            _route(ReturnReceived, _timeline_only),
            _route(Returned, service.record_returned),
            _route(RefundIssued, service.record_refund),
            _route(NotificationSent, service.record_notification),
            _route(NotificationFailed, _timeline_only),
            _route(NotificationSkipped, _timeline_only),
        ]
    )


async def _timeline_only(_uow: UnitOfWork, _event: Event) -> None:
    """The event changes nothing of the order; `_route` records it in the timeline."""


def _route(
    event_class: type[EventT], handle: Callable[[UnitOfWork, EventT], Awaitable[None]]
) -> tuple[type[Event], Handler]:
    typed = _typed(event_class, handle)

    async def handler(uow: UnitOfWork, event: Event) -> None:
        await typed(uow, event)
        await service.record_in_timeline(uow, event)

    return event_class, handler


def _typed(
    event_class: type[EventT], handle: Callable[[UnitOfWork, EventT], Awaitable[None]]
) -> Handler:
    """The kit routes by the decoded event's class, so the check below always holds; it
    lets each use case take its own event type."""

    async def handler(uow: UnitOfWork, event: Event) -> None:
        if not isinstance(event, event_class):
            raise TypeError(f"{type(event).__name__} routed to the {event_class.__name__} handler")
        await handle(uow, event)

    return handler


def invalid_submission_handler(channel_topic: str) -> InvalidRecordHandler:
    """Records on the channel topic that break the contract become OrderRejected when the
    channel order can be identified; anything else is left to the dead-letter topic."""

    async def handle(uow: UnitOfWork, record: ConsumedRecord, error: InvalidEvent) -> bool:
        if record.topic != channel_topic:
            return False
        cause = ChangeCause(actor=CHANNEL_ACTOR, event_id=_event_id(record))
        return await service.reject_contract_violation(uow, record.value, str(error), cause)

    return handle


def _event_id(record: ConsumedRecord) -> UUID | None:
    try:
        return UUID(header_map(record.headers).get(HEADER_ID, ""))
    except ValueError:
        return None
