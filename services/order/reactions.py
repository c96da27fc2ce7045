"""The order's reactions to what the other services report: one use case per consumed
event type, each a plain function of the batch's state (`OrderBatch`), no I/O.

Every consumed event about a known order joins the order's timeline, whatever it changes
(events the service only shows, such as StockCommitted or ShipmentPacked, change nothing
else). An event about an order this service does not know is left alone: a warning when
it should have moved the order, silently when it is only news (notifications about a SKU
are keyed by the SKU).

Status changes go through the domain's transitions, each with its status history row.
Shipment and return events do not name a status: they add a fact, and every fact known so
far decides the status (so the arrival order of the facts does not matter).
"""

from __future__ import annotations

from contracts.base import Money, OrderEvent
from contracts.events.fulfilment import (
    Delivered,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentReplanned,
    Shipped,
)
from contracts.events.inventory import StockReservationFailed, StockReserved
from contracts.events.notification import NotificationAbout, NotificationSent
from contracts.events.order import CancellationReason, OrderCancelled, OrderConfirmed
from contracts.events.returns import RefundIssued, Returned, ReturnRejected, ReturnRequested
from services.kit.batch import Context
from services.kit.logs import get_logger
from services.order import domain, timeline
from services.order.batch_state import (
    OrderBatch,
    OrderState,
    ReturnChange,
    ShipmentChange,
    announce,
)
from services.order.domain import Refusal
from services.order.rows import ChangeCause, NotificationRow, RefundRow

log = get_logger(__name__)


# --- stock ----------------------------------------------------------------------------------


def confirm_order(batch: OrderBatch, event: StockReserved, context: Context) -> None:
    order = _order_to_move(batch, event)
    if order is None:
        return
    decision = domain.confirmation(order.status, already_confirmed=order.reservation_id is not None)
    if isinstance(decision, Refusal):
        _ignored(event, order, decision)
        return
    order.reserve(event.reservation_id)
    if decision.transition is not None:
        batch.change_status(order, decision.transition, _cause(event, "inventory"))
    announce(
        batch, context, OrderConfirmed(order_id=event.order_id, reservation_id=event.reservation_id)
    )


def cancel_for_shortage(batch: OrderBatch, event: StockReservationFailed, context: Context) -> None:
    order = _order_to_move(batch, event)
    if order is None:
        return
    decision = domain.reservation_failure(order.status)
    if isinstance(decision, Refusal):
        _ignored(event, order, decision)
        return
    batch.change_status(order, decision, _cause(event, "inventory"))
    short = ", ".join(
        f"{shortage.sku} ({shortage.available} of {shortage.requested})"
        for shortage in event.shortages
    )
    announce(
        batch,
        context,
        OrderCancelled(
            order_id=event.order_id,
            reason=CancellationReason.OUT_OF_STOCK,
            cancelled_by="system",
            note=f"Not enough stock: {short}"[:2000],
        ),
    )


# --- shipments ------------------------------------------------------------------------------


def record_shipment_created(batch: OrderBatch, event: ShipmentCreated, _context: Context) -> None:
    _record_shipment(
        batch,
        event,
        event.shipment_id,
        ShipmentChange(
            warehouse_id=event.warehouse_id,
            carrier=event.carrier,
            shipping_method=event.shipping_method,
            planned_lines=event.lines,
            created_at=event.occurred_at,
        ),
    )


def record_shipment_replanned(
    batch: OrderBatch, event: ShipmentReplanned, _context: Context
) -> None:
    _record_shipment(
        batch,
        event,
        event.shipment_id,
        ShipmentChange(
            warehouse_id=event.warehouse_id,
            carrier=event.carrier,
            shipping_method=event.shipping_method,
        ),
    )


def record_shipped(batch: OrderBatch, event: Shipped, _context: Context) -> None:
    _record_shipment(
        batch,
        event,
        event.shipment_id,
        ShipmentChange(
            warehouse_id=event.warehouse_id,
            carrier=event.carrier,
            tracking_number=event.tracking_number,
            shipped_lines=event.lines,
            shipped_at=event.shipped_at,
        ),
    )


def record_delivered(batch: OrderBatch, event: Delivered, _context: Context) -> None:
    _record_shipment(
        batch,
        event,
        event.shipment_id,
        ShipmentChange(tracking_number=event.tracking_number, delivered_at=event.delivered_at),
    )


def record_shipment_cancelled(
    batch: OrderBatch, event: ShipmentCancelled, _context: Context
) -> None:
    _record_shipment(
        batch,
        event,
        event.shipment_id,
        ShipmentChange(cancelled_at=event.occurred_at, cancellation_reason=event.reason.value),
    )


# --- returns and refunds --------------------------------------------------------------------


def record_return_requested(batch: OrderBatch, event: ReturnRequested, _context: Context) -> None:
    _record_return(
        batch,
        event,
        event.return_id,
        ReturnChange(requested_lines=event.lines, requested_at=event.requested_at),
    )


def record_return_rejected(batch: OrderBatch, event: ReturnRejected, _context: Context) -> None:
    _record_return(batch, event, event.return_id, ReturnChange(rejected_at=event.occurred_at))


def record_returned(batch: OrderBatch, event: Returned, _context: Context) -> None:
    _record_return(
        batch,
        event,
        event.return_id,
        ReturnChange(returned_lines=event.lines, returned_at=event.occurred_at),
    )


def record_refund(batch: OrderBatch, event: RefundIssued, _context: Context) -> None:
    if _order_to_move(batch, event) is None:
        return
    batch.refunds.append(
        RefundRow(
            order_id=event.order_id,
            refund_id=event.refund_id,
            return_id=event.return_id,
            currency=event.amount.currency,
            amount_minor=event.amount.amount_minor,
            lines_amount_minor=event.lines_amount.amount_minor,
            shipping_refunded_minor=event.shipping_refunded.amount_minor,
            goods_amount_minor=_minor(event.goods_amount),
            tax_amount_minor=_minor(event.tax_amount),
            shipping_amount_minor=_minor(event.shipping_amount),
            policy=event.policy,
            issued_at=event.occurred_at,
        )
    )


# --- notifications and news -----------------------------------------------------------------


def record_notification(batch: OrderBatch, event: NotificationSent, context: Context) -> None:
    if batch.order(event.subject_key) is None:
        return
    batch.notifications.append(
        NotificationRow(
            order_id=event.subject_key,
            notification_id=event.notification_id,
            cause_event_id=event.cause_event_id,
            cause_event_type=event.cause_event_type,
            channel=event.channel.value,
            recipient=event.recipient,
            template=event.template,
            sent_at=event.occurred_at,
        )
    )
    show_notification(batch, event, context)


def show_notification(batch: OrderBatch, event: NotificationAbout, _context: Context) -> None:
    """A message about an order (sent, failed or skipped) joins its timeline."""
    if batch.order(event.subject_key) is not None:
        batch.record(event.subject_key, timeline.entry(event))


def show(batch: OrderBatch, event: OrderEvent, _context: Context) -> None:
    """News that changes nothing of the order but its timeline."""
    if batch.order(event.order_id) is not None:
        batch.record(event.order_id, timeline.entry(event))


# --- shared steps ---------------------------------------------------------------------------


def _order_to_move(batch: OrderBatch, event: OrderEvent) -> OrderState | None:
    """The order the event is about, having recorded the event in its timeline; None,
    with a warning, when the order is unknown."""
    order = batch.order(event.order_id)
    if order is None:
        log.warning("event about an unknown order ignored", event_type=event.event_type())
        return None
    batch.record(order.order_id, timeline.entry(event))
    return order


def _record_shipment(
    batch: OrderBatch, event: OrderEvent, shipment_id: str, change: ShipmentChange
) -> None:
    order = _order_to_move(batch, event)
    if order is None:
        return
    batch.record_shipment(order, shipment_id, change)
    _follow_facts(batch, order, event, "fulfilment")


def _record_return(
    batch: OrderBatch, event: OrderEvent, return_id: str, change: ReturnChange
) -> None:
    order = _order_to_move(batch, event)
    if order is None:
        return
    batch.record_return(order, return_id, change)
    _follow_facts(batch, order, event, "returns")


def _follow_facts(batch: OrderBatch, order: OrderState, event: OrderEvent, actor: str) -> None:
    """Lets every fact known so far decide when the order was delivered and its status."""
    facts = order.loaded_facts()
    shipments = list(facts.shipments.values())
    delivered_at = domain.delivered_at(facts.ordered, shipments)
    if delivered_at != order.delivered_at:
        order.deliver(delivered_at)
    change = domain.status_change(
        order.status,
        domain.derived_status(order.status, facts.ordered, shipments, facts.returns.values()),
        completed=order.completed,
    )
    if isinstance(change, Refusal):
        # Typically goods shipped after the order was cancelled: the facts are kept for
        # people to act on, the status stays.
        log.warning(
            "facts call for a status the order cannot take; status kept",
            order_id=order.order_id,
            status=order.status.value,
            code=change.code.value,
            reason=change.message,
            event_type=event.event_type(),
        )
    elif change is not None:
        batch.change_status(order, change, _cause(event, actor))


def _ignored(event: OrderEvent, order: OrderState, refusal: Refusal) -> None:
    log.debug(
        "event does not apply to the order; ignored",
        event_type=event.event_type(),
        status=order.status.value,
        code=refusal.code.value,
        reason=refusal.message,
    )


def _cause(event: OrderEvent, actor: str) -> ChangeCause:
    return ChangeCause(actor=actor, event_id=event.event_id)


def _minor(money: Money | None) -> int | None:
    return None if money is None else money.amount_minor
