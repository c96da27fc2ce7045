"""The order service's reactions to consumed events: one thin function per event type
(decoding is done by the kit), each calling one use case; and the answer to a channel
record that breaks the inbound contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from contracts.base import Event
from contracts.events.channel import OrderSubmitted
from contracts.events.fulfilment import Delivered, ShipmentCancelled, ShipmentCreated, Shipped
from contracts.events.inventory import StockReservationFailed, StockReserved
from contracts.events.notification import NotificationSent
from contracts.events.returns import RefundIssued, Returned, ReturnRejected, ReturnRequested
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
        cause = ChangeCause(actor=CHANNEL_ACTOR, event_id=event.event_id)
        await service.submit_order(uow, event, policy, cause)

    return dict(
        [
            _route(OrderSubmitted, on_order_submitted),
            _route(StockReserved, service.confirm_order),
            _route(StockReservationFailed, service.cancel_for_shortage),
            _route(ShipmentCreated, service.record_shipment_created),
            _route(Shipped, service.record_shipped),
            _route(Delivered, service.record_delivered),
            _route(ShipmentCancelled, service.record_shipment_cancelled),
            _route(ReturnRequested, service.record_return_requested),
            _route(ReturnRejected, service.record_return_rejected),
            _route(Returned, service.record_returned),
            _route(RefundIssued, service.record_refund),
            _route(NotificationSent, service.record_notification),
        ]
    )


def _route(
    event_class: type[EventT], handle: Callable[[UnitOfWork, EventT], Awaitable[None]]
) -> tuple[type[Event], Handler]:
    """The kit routes by the decoded event's class, so the check below always holds; it
    lets each use case take its own event type."""

    async def handler(uow: UnitOfWork, event: Event) -> None:
        if not isinstance(event, event_class):
            raise TypeError(f"{type(event).__name__} routed to the {event_class.__name__} handler")
        await handle(uow, event)

    return event_class, handler


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
