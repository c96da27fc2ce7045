"""The order service's consumed events, one use case each (the kit decodes the events of a
batch, claims them in the inbox and loads the batch's state; each use case applies its
event to that state), and the answer to a channel record that breaks the inbound contract.

Every consumed event about a known order joins the order's timeline; the events the
service only shows (StockCommitted, ShipmentPacked, ...) have a use case doing just that.
LowStockDetected is about a SKU, never an order: not applied (the kit skips it unread)."""

from __future__ import annotations

from uuid import UUID

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
from services.kit.batch import Context, Router
from services.kit.dead_letters import ConsumedRecord
from services.kit.pipeline import InvalidRecordHandler
from services.kit.unit_of_work import UnitOfWork
from services.order import batch_state, reactions, submissions
from services.order.batch_state import OrderBatch
from services.order.rows import ChangeCause
from services.order.submissions import CHANNEL_ACTOR, IntakePolicy


def router(policy: IntakePolicy) -> Router[OrderBatch]:
    consumed: Router[OrderBatch] = Router(load=batch_state.load, save=batch_state.save)

    @consumed.on(OrderSubmitted)
    def take_order(batch: OrderBatch, event: OrderSubmitted, context: Context) -> None:
        submissions.take_order(batch, event, context, policy)

    consumed.on(StockReserved)(reactions.confirm_order)
    consumed.on(StockReservationFailed)(reactions.cancel_for_shortage)
    consumed.on(StockReleased)(reactions.show)
    consumed.on(StockCommitted)(reactions.show)
    consumed.on(StockRestocked)(reactions.show)
    consumed.on(ShipmentCreated)(reactions.record_shipment_created)
    consumed.on(ShipmentReplanned)(reactions.record_shipment_replanned)
    consumed.on(ShipmentPacked)(reactions.show)
    consumed.on(Shipped)(reactions.record_shipped)
    consumed.on(Delivered)(reactions.record_delivered)
    consumed.on(ShipmentCancelled)(reactions.record_shipment_cancelled)
    consumed.on(ReturnRequested)(reactions.record_return_requested)
    consumed.on(ReturnApproved)(reactions.show)
    consumed.on(ReturnRejected)(reactions.record_return_rejected)
    consumed.on(ReturnReceived)(reactions.show)
    consumed.on(Returned)(reactions.record_returned)
    consumed.on(RefundIssued)(reactions.record_refund)
    consumed.on(NotificationSent)(reactions.record_notification)
    consumed.on(NotificationFailed)(reactions.show_notification)
    consumed.on(NotificationSkipped)(reactions.show_notification)
    return consumed


def invalid_submission_handler(channel_topic: str) -> InvalidRecordHandler:
    """Records on the channel topic that break the contract become OrderRejected when the
    channel order can be identified; anything else is left to the dead-letter topic."""

    async def handle(uow: UnitOfWork, record: ConsumedRecord, error: InvalidEvent) -> bool:
        if record.topic != channel_topic:
            return False
        cause = ChangeCause(actor=CHANNEL_ACTOR, event_id=_event_id(record))
        return await submissions.reject_contract_violation(uow, record.value, str(error), cause)

    return handle


def _event_id(record: ConsumedRecord) -> UUID | None:
    try:
        return UUID(header_map(record.headers).get(HEADER_ID, ""))
    except ValueError:
        return None
