"""Use cases of the returns service: one function per thing it does. A consumed order fact
is recorded in the state of the batch it arrived in (`batch_state`, written when the batch
is saved); a command on returns writes its state and emits its events in the caller's unit
of work.

A request that fails the return check is still recorded, as a rejected return, and
answered with ReturnRequested followed by ReturnRejected: a business refusal is an event
(DESIGN.md), so the customer is told why (notification) and the order's history shows
the attempt. Commands on an existing return that its state does not allow are refused
without any event or change (the API answers 409).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.base import Money
from contracts.events import returns as events
from contracts.events.common import OrderLine, SkuQuantity
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.order import OrderPlaced
from contracts.events.pricing import DiscountAllocation, TaxLine
from services.kit.batch import Context
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork
from services.returns import db, domain
from services.returns.batch_state import OrderFactsBatch

log = get_logger(__name__)


@dataclass(frozen=True)
class ReturnPolicy:
    window: timedelta = domain.DEFAULT_RETURN_WINDOW
    auto_approve: bool = False


@dataclass(frozen=True)
class OrderNotFound:
    order_id: str


@dataclass(frozen=True)
class ReturnNotFound:
    return_id: str


CommandResult = domain.Return | ReturnNotFound | domain.CommandRefusal


def record_order_placed(facts: OrderFactsBatch, event: OrderPlaced, _context: Context) -> None:
    placement = domain.Placement(
        currency=event.currency,
        shipping_paid=_shipping_paid(event),
        customer_id=event.customer.customer_id,
        lines=tuple(
            domain.OrderedLine(line.sku, line.quantity, _line_paid(line, event.taxes_included))
            for line in event.lines
        ),
    )
    facts.record_placement(
        event.order_id, placement, [line.line_id for line in event.lines], event.placed_at
    )


def _line_paid(line: OrderLine, taxes_included: bool) -> domain.TaxedAmount:
    after_discounts = (
        line.discounted_total.amount_minor
        if line.discounted_total is not None
        else line.line_total.amount_minor - _sum(line.discount_allocations)
    )
    return domain.paid(after_discounts, _sum(line.tax_lines), taxes_included=taxes_included)


def _shipping_paid(event: OrderPlaced) -> domain.TaxedAmount:
    if not event.shipping_lines:
        # An order without shipping lines states only its charge, and no tax on it.
        return domain.TaxedAmount(event.shipping_charge.amount_minor, 0)
    return sum(
        (
            domain.paid(
                shipping.discounted_price.amount_minor
                if shipping.discounted_price is not None
                else shipping.price.amount_minor - _sum(shipping.discount_allocations),
                _sum(shipping.tax_lines),
                taxes_included=event.taxes_included,
            )
            for shipping in event.shipping_lines
        ),
        domain.NOTHING,
    )


def _sum(parts: Iterable[DiscountAllocation | TaxLine]) -> int:
    return sum(part.amount.amount_minor for part in parts)


def record_shipped(facts: OrderFactsBatch, event: Shipped, _context: Context) -> None:
    quantities: dict[str, int] = {}
    for line in event.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    facts.record_shipment(
        event.order_id,
        domain.Shipment(
            shipment_id=event.shipment_id,
            warehouse_id=event.warehouse_id,
            shipped_at=event.shipped_at,
            quantities=quantities,
        ),
    )


def record_delivered(facts: OrderFactsBatch, event: Delivered, _context: Context) -> None:
    facts.record_delivery(event.order_id, event.shipment_id, event.delivered_at)


async def request_return(
    uow: UnitOfWork,
    *,
    order_id: str,
    lines: Sequence[domain.RequestedLine],
    policy: ReturnPolicy,
    now: datetime,
) -> domain.Return | OrderNotFound:
    connection = uow.connection
    if not await db.lock_order(connection, order_id):
        return OrderNotFound(order_id)
    order = await db.load_order(connection, order_id)
    assert order is not None, "the order row is locked, so it exists"
    earlier = await db.load_returns(connection, order_id=order_id)
    refusals = domain.check_return_request(order, lines, earlier, now=now, window=policy.window)
    rma = domain.Return(
        return_id=f"rma_{uuid.uuid4().hex}",
        order_id=order_id,
        status=domain.ReturnStatus.REJECTED if refusals else domain.ReturnStatus.REQUESTED,
        lines=tuple(lines),
        requested_at=now,
        rejection_reasons=refusals,
    )
    if not refusals and policy.auto_approve:
        rma = dataclasses.replace(
            rma, status=domain.ReturnStatus.APPROVED, label_reference=_new_label_reference()
        )
    await db.insert_return(connection, rma)
    uow.emit(
        events.ReturnRequested(
            order_id=order_id,
            return_id=rma.return_id,
            lines=tuple(
                events.ReturnRequestLine(
                    sku=line.sku,
                    quantity=line.quantity,
                    reason_code=events.ReturnReasonCode(line.reason.value),
                )
                for line in lines
            ),
            requested_at=now,
        )
    )
    if refusals:
        uow.emit(_rejected_event(rma))
    elif rma.status is domain.ReturnStatus.APPROVED:
        uow.emit(_approved_event(rma))
    log.info("return requested", return_id=rma.return_id, status=rma.status.value)
    return rma


async def approve_return(uow: UnitOfWork, return_id: str) -> CommandResult:
    rma = await _locked_return(uow.connection, return_id)
    if rma is None:
        return ReturnNotFound(return_id)
    refusal = domain.approval_refusal(rma)
    if refusal is not None:
        return refusal
    approved = dataclasses.replace(
        rma, status=domain.ReturnStatus.APPROVED, label_reference=_new_label_reference()
    )
    await db.change_status(
        uow.connection,
        return_id,
        expected=domain.ReturnStatus.REQUESTED,
        new=approved.status,
        label_reference=approved.label_reference,
    )
    uow.emit(_approved_event(approved))
    log.info("return approved", return_id=return_id)
    return approved


async def reject_return(
    uow: UnitOfWork, return_id: str, reasons: Sequence[domain.Refusal]
) -> CommandResult:
    rma = await _locked_return(uow.connection, return_id)
    if rma is None:
        return ReturnNotFound(return_id)
    refusal = domain.approval_refusal(rma)
    if refusal is not None:
        return refusal
    rejected = dataclasses.replace(
        rma, status=domain.ReturnStatus.REJECTED, rejection_reasons=tuple(reasons)
    )
    await db.change_status(
        uow.connection,
        return_id,
        expected=domain.ReturnStatus.REQUESTED,
        new=rejected.status,
        rejection_reasons=rejected.rejection_reasons,
    )
    uow.emit(_rejected_event(rejected))
    log.info("return rejected", return_id=return_id)
    return rejected


async def receive_return(
    uow: UnitOfWork,
    return_id: str,
    *,
    warehouse_id: str | None,
    received: Sequence[domain.ReceivedLine],
) -> CommandResult:
    """Records what arrived and its inspection, settles the return and refunds it, in one
    transaction: ReturnReceived (inventory restocks), Returned, RefundIssued (what is owed
    back, broken down; the refund's id is ours, as no payment provider is involved here)."""
    connection = uow.connection
    rma = await _locked_return(connection, return_id)
    if rma is None:
        return ReturnNotFound(return_id)
    order = await db.load_order(connection, rma.order_id)
    assert order is not None, "a return exists only for a known order"
    refusal = domain.receipt_refusal(rma, order, received)
    if refusal is not None:
        return refusal
    assert order.placement is not None, "receipt_refusal refuses an order without prices"
    receiving_warehouse = warehouse_id or domain.default_receiving_warehouse(
        order, (line.sku for line in received)
    )
    if receiving_warehouse is None:
        return domain.CommandRefusal(
            domain.CommandRefusalCode.RECEIVING_WAREHOUSE_UNKNOWN,
            "The received SKUs shipped from several warehouses: say which one received them.",
        )
    others = await db.load_returns(connection, order_id=rma.order_id)
    computation = domain.compute_refund(order.placement, rma, received, others)
    refund = domain.Refund(
        refund_id=f"rf_{uuid.uuid4().hex}",
        currency=order.placement.currency,
        lines_total=computation.lines_total,
        shipping=computation.shipping,
        policy=computation.policy,
        lines=computation.lines,
    )
    completed = dataclasses.replace(
        rma,
        status=domain.ReturnStatus.COMPLETED,
        receiving_warehouse_id=receiving_warehouse,
        received=tuple(received),
        refund=refund,
    )
    await db.change_status(
        connection,
        return_id,
        expected=domain.ReturnStatus.APPROVED,
        new=completed.status,
        receiving_warehouse_id=receiving_warehouse,
    )
    await db.record_inspection(connection, return_id, received)
    await db.insert_refund(connection, return_id, rma.order_id, refund)
    _emit_receipt(uow, completed, refund)
    log.info(
        "return received and refunded",
        return_id=return_id,
        refund_id=refund.refund_id,
        amount_minor=refund.amount_minor,
        policy=refund.policy,
    )
    return completed


async def find_return(connection: AsyncConnection, return_id: str) -> domain.Return | None:
    found = await db.load_returns(connection, return_id=return_id)
    return found[0] if found else None


async def returns_of_order(connection: AsyncConnection, order_id: str) -> list[domain.Return]:
    return await db.load_returns(connection, order_id=order_id)


async def _locked_return(connection: AsyncConnection, return_id: str) -> domain.Return | None:
    """The return, read after locking its order's row (every command on the returns of one
    order goes through that lock, so they never interleave)."""
    order_id = await db.order_of_return(connection, return_id)
    if order_id is None:
        return None
    await db.lock_order(connection, order_id)
    return await find_return(connection, return_id)


def _new_label_reference() -> str:
    return f"RL-{uuid.uuid4().hex[:16].upper()}"


def _approved_event(rma: domain.Return) -> events.ReturnApproved:
    assert rma.label_reference is not None, "an approved return has a label"
    return events.ReturnApproved(
        order_id=rma.order_id,
        return_id=rma.return_id,
        label_reference=rma.label_reference,
        lines=tuple(SkuQuantity(sku=line.sku, quantity=line.quantity) for line in rma.lines),
    )


def _rejected_event(rma: domain.Return) -> events.ReturnRejected:
    return events.ReturnRejected(
        order_id=rma.order_id,
        return_id=rma.return_id,
        reasons=tuple(
            events.ReturnRejectionReason(
                code=events.ReturnRejectionCode(reason.code.value),
                field=reason.field,
                message=reason.message,
            )
            for reason in rma.rejection_reasons
        ),
    )


def _emit_receipt(uow: UnitOfWork, rma: domain.Return, refund: domain.Refund) -> None:
    assert rma.receiving_warehouse_id is not None, "a received return has a warehouse"
    uow.emit(
        events.ReturnReceived(
            order_id=rma.order_id,
            return_id=rma.return_id,
            warehouse_id=rma.receiving_warehouse_id,
            lines=tuple(
                events.ReceivedLine(
                    sku=line.sku,
                    quantity=line.quantity,
                    restockable_quantity=line.restockable_quantity,
                    note=line.note,
                )
                for line in rma.received
            ),
        )
    )
    uow.emit(
        events.Returned(
            order_id=rma.order_id,
            return_id=rma.return_id,
            lines=tuple(SkuQuantity(sku=line.sku, quantity=line.quantity) for line in rma.received),
        )
    )

    def money(amount_minor: int) -> Money:
        return Money(amount_minor=amount_minor, currency=refund.currency)

    uow.emit(
        events.RefundIssued(
            order_id=rma.order_id,
            return_id=rma.return_id,
            refund_id=refund.refund_id,
            amount=money(refund.amount_minor),
            lines_amount=money(refund.lines_amount_minor),
            shipping_refunded=money(refund.shipping_refunded_minor),
            goods_amount=money(refund.goods_amount_minor),
            tax_amount=money(refund.tax_amount_minor),
            shipping_amount=money(refund.shipping_amount_minor),
            lines=tuple(
                events.RefundedLine(
                    sku=line.sku,
                    quantity=line.quantity,
                    amount=money(line.refunded.amount_minor),
                    tax=money(line.refunded.tax_minor),
                )
                for line in refund.lines
            ),
            policy=refund.policy,
        )
    )
