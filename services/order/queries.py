"""What the order service shows: one order with everything known of it, a page of the
order listing, an order's timeline. Read-only, from the service's own tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from contracts.base import Money
from contracts.events.common import Address, Customer, OrderPricing, SkuQuantity
from contracts.events.pricing import DiscountAllocation, TaxLine
from services.kit.unit_of_work import UnitOfWork
from services.order import db, domain
from services.order.domain import OrderStatus
from services.order.rows import JsonValue, LineRow, ReturnRow, ShipmentRow
from services.order.submissions import STORED_PRICING
from services.order.views import (
    LineView,
    NotificationView,
    OrderCursor,
    OrderPage,
    OrderSummary,
    OrderView,
    RefundView,
    RejectionReasonView,
    RequestedReturnLineView,
    ReturnView,
    ShipmentView,
    StatusChangeView,
    TimelineEntryView,
)

ModelT = TypeVar("ModelT", bound=BaseModel)


async def order_view(uow: UnitOfWork, order_id: str) -> OrderView | None:
    connection = uow.connection
    order = await db.order(connection, order_id)
    if order is None:
        return None
    currency = order.currency
    shipment_rows = await db.shipments_of(connection, order_id)
    return_rows = await db.returns_of(connection, order_id)
    shipments = [_shipment_facts(row) for row in shipment_rows]
    return OrderView(
        order_id=order_id,
        channel=order.channel,
        external_order_id=order.external_order_id,
        status=order.status,
        customer=_maybe(Customer, order.customer),
        lines=[_line_view(line, currency) for line in await db.lines_of(connection, order_id)],
        currency=currency,
        subtotal=_amount(order.subtotal_minor, currency),
        shipping_charge=_amount(order.shipping_charge_minor, currency),
        total=_amount(order.total_minor, currency),
        total_discounts=_amount(order.total_discounts_minor, currency),
        total_tax=_amount(order.total_tax_minor, currency),
        **_stored_pricing(order.pricing),
        shipping_address=_maybe(Address, order.shipping_address),
        shipping_speed=order.shipping_speed,
        placed_at=order.placed_at,
        placed_by=order.placed_by,
        notes=order.notes,
        rejection_reasons=[
            RejectionReasonView.model_validate(reason) for reason in order.rejection_reasons or ()
        ],
        reservation_id=order.reservation_id,
        shipped_quantities=domain.shipped_quantities(shipments),
        returned_quantities=domain.returned_quantities(_return_facts(row) for row in return_rows),
        shipments=[
            ShipmentView(
                shipment_id=row.shipment_id,
                status=facts.status.value,
                warehouse_id=row.warehouse_id,
                carrier=row.carrier,
                tracking_number=row.tracking_number,
                planned_lines=_sku_quantities(row.planned_lines),
                shipped_lines=_sku_quantities(row.shipped_lines),
                shipped_at=row.shipped_at,
                delivered_at=row.delivered_at,
                cancelled_at=row.cancelled_at,
                cancellation_reason=row.cancellation_reason,
            )
            for row, facts in zip(shipment_rows, shipments, strict=True)
        ],
        returns=[
            ReturnView(
                return_id=row.return_id,
                requested_lines=(
                    None
                    if row.requested_lines is None
                    else [
                        RequestedReturnLineView.model_validate(line) for line in row.requested_lines
                    ]
                ),
                requested_at=row.requested_at,
                rejected_at=row.rejected_at,
                returned_lines=_sku_quantities(row.returned_lines),
                returned_at=row.returned_at,
            )
            for row in return_rows
        ],
        refunds=[
            RefundView(
                refund_id=row.refund_id,
                return_id=row.return_id,
                amount=Money(amount_minor=row.amount_minor, currency=row.currency),
                lines_amount=Money(amount_minor=row.lines_amount_minor, currency=row.currency),
                shipping_refunded=Money(
                    amount_minor=row.shipping_refunded_minor, currency=row.currency
                ),
                goods_amount=_amount(row.goods_amount_minor, row.currency),
                tax_amount=_amount(row.tax_amount_minor, row.currency),
                shipping_amount=_amount(row.shipping_amount_minor, row.currency),
                policy=row.policy,
                issued_at=row.issued_at,
            )
            for row in await db.refunds_of(connection, order_id)
        ],
        notifications=[
            NotificationView.model_validate(row, from_attributes=True)
            for row in await db.notifications_of(connection, order_id)
        ],
        status_history=[
            StatusChangeView.model_validate(row, from_attributes=True)
            for row in await db.history_of(connection, order_id)
        ],
        delivered_at=order.delivered_at,
        completed_at=order.completed_at,
        final_status=order.final_status,
        created_at=order.created_at,
        timeline=await _timeline(uow, order_id),
    )


@dataclass(frozen=True)
class OrderFilters:
    channel: str | None = None
    external_order_id: str | None = None
    status: OrderStatus | None = None
    customer_id: str | None = None
    placed_from: datetime | None = None
    """Placed at or after."""
    placed_before: datetime | None = None
    """Placed strictly before."""
    placed_until: datetime | None = None
    """Placed at or before."""


async def order_page(
    uow: UnitOfWork, filters: OrderFilters, *, limit: int, after: OrderCursor | None = None
) -> OrderPage:
    """One page of the orders that match, newest first; `next_cursor` is null on the last."""
    rows = await db.find_orders(
        uow.connection,
        channel=filters.channel,
        external_order_id=filters.external_order_id,
        status=filters.status.value if filters.status else None,
        customer_id=filters.customer_id,
        placed_from=filters.placed_from,
        placed_before=filters.placed_before,
        placed_until=filters.placed_until,
        after=(after.created_at, after.order_id) if after else None,
        # One more than asked tells whether another page exists.
        limit=limit + 1,
    )
    page = rows[:limit]
    last = page[-1] if page else None
    return OrderPage(
        items=[
            OrderSummary(
                order_id=row.order_id,
                channel=row.channel,
                external_order_id=row.external_order_id,
                status=row.status,
                customer_id=row.customer["customer_id"] if row.customer else None,
                total=_amount(row.total_minor, row.currency),
                placed_at=row.placed_at,
                created_at=row.created_at,
            )
            for row in page
        ],
        next_cursor=(
            OrderCursor(created_at=last.created_at, order_id=last.order_id).encode()
            if last is not None and len(rows) > limit
            else None
        ),
    )


async def timeline_view(uow: UnitOfWork, order_id: str) -> list[TimelineEntryView] | None:
    if await db.order(uow.connection, order_id) is None:
        return None
    return await _timeline(uow, order_id)


async def _timeline(uow: UnitOfWork, order_id: str) -> list[TimelineEntryView]:
    return [
        TimelineEntryView.model_validate(row, from_attributes=True)
        for row in await db.timeline_of(uow.connection, order_id)
    ]


def _shipment_facts(row: ShipmentRow) -> domain.ShipmentFacts:
    return domain.ShipmentFacts(
        shipment_id=row.shipment_id,
        shipped_lines=_quantities(row.shipped_lines),
        delivered_at=row.delivered_at,
        cancelled=row.cancelled_at is not None,
    )


def _return_facts(row: ReturnRow) -> domain.ReturnFacts:
    return domain.ReturnFacts(
        return_id=row.return_id,
        requested=row.requested_at is not None,
        rejected=row.rejected_at is not None,
        returned_lines=_quantities(row.returned_lines),
    )


def _quantities(lines: JsonValue) -> dict[str, int] | None:
    if lines is None:
        return None
    return domain.quantities((line["sku"], line["quantity"]) for line in lines)


def _line_view(line: LineRow, currency: str | None) -> LineView:
    assert currency is not None, "only placed orders have lines, and they have a currency"
    line_total = Money(amount_minor=line.line_total_minor, currency=currency)
    return LineView(
        line_id=line.line_id,
        sku=line.sku,
        title=line.title,
        quantity=line.quantity,
        unit_price=Money(amount_minor=line.unit_price_minor, currency=currency),
        line_total=line_total,
        # Lines stored before the money model had no discounts and no tax.
        discounted_total=_amount(line.discounted_total_minor, currency) or line_total,
        **_stored_line_pricing(line.pricing),
    )


def _stored_pricing(stored: JsonValue) -> dict[str, object]:
    """The order's money fields kept as JSON (none for orders placed before the money
    model), read back as the contract's models. JSON keeps enums as their values: read
    them as JSON reads them, not strictly."""
    if stored is None:
        return {}
    pricing = OrderPricing.model_validate(stored, strict=False)
    return {name: getattr(pricing, name) for name in STORED_PRICING}


def _stored_line_pricing(stored: JsonValue) -> dict[str, object]:
    if stored is None:
        return {}
    line = _StoredLinePricing.model_validate(stored, strict=False)
    return {"discount_allocations": line.discount_allocations, "tax_lines": line.tax_lines}


class _StoredLinePricing(BaseModel):
    discount_allocations: tuple[DiscountAllocation, ...] = ()
    tax_lines: tuple[TaxLine, ...] = ()


def _maybe(model: type[ModelT], value: JsonValue) -> ModelT | None:
    return None if value is None else model.model_validate(value)


def _amount(amount_minor: int | None, currency: str | None) -> Money | None:
    if amount_minor is None or currency is None:
        return None
    return Money(amount_minor=amount_minor, currency=currency)


def _sku_quantities(lines: JsonValue) -> list[SkuQuantity] | None:
    return None if lines is None else [SkuQuantity.model_validate(line) for line in lines]
