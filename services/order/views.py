"""What the order service shows of an order and its catalogue: the read models that the
query use cases build and the HTTP API returns."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import Money
from contracts.events.common import Address, Customer, SkuQuantity
from contracts.events.pricing import (
    ChannelPayment,
    Charge,
    Discount,
    DiscountAllocation,
    ShippingLine,
    TaxLine,
)


class ProductView(BaseModel):
    sku: str
    name: str
    active: bool = Field(description="Only active products can be ordered")


class LineView(BaseModel):
    line_id: str
    sku: str
    title: str | None
    quantity: int
    unit_price: Money
    line_total: Money = Field(description="unit_price * quantity, before discounts")
    discount_allocations: list[DiscountAllocation] = []
    discounted_total: Money = Field(description="line_total - its discounts")
    tax_lines: list[TaxLine] = []


class RejectionReasonView(BaseModel):
    code: str
    field: str | None
    message: str


class ShipmentView(BaseModel):
    shipment_id: str
    status: str = Field(description="created, shipped, delivered or cancelled")
    warehouse_id: str | None
    carrier: str | None
    tracking_number: str | None
    planned_lines: list[SkuQuantity] | None = Field(description="From ShipmentCreated")
    shipped_lines: list[SkuQuantity] | None = Field(description="From Shipped: what left")
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: str | None


class RequestedReturnLineView(BaseModel):
    sku: str
    quantity: int
    reason_code: str


class ReturnView(BaseModel):
    return_id: str
    requested_lines: list[RequestedReturnLineView] | None
    requested_at: datetime | None
    rejected_at: datetime | None
    returned_lines: list[SkuQuantity] | None
    returned_at: datetime | None


class RefundView(BaseModel):
    refund_id: str
    return_id: str
    amount: Money
    lines_amount: Money
    shipping_refunded: Money
    goods_amount: Money | None = Field(description="Refunded for goods, net of tax")
    tax_amount: Money | None = Field(description="Tax refunded")
    shipping_amount: Money | None = Field(description="Refunded for shipping, net of tax")
    policy: str
    issued_at: datetime


class NotificationView(BaseModel):
    notification_id: str
    cause_event_id: UUID
    cause_event_type: str
    channel: str
    recipient: str
    template: str
    sent_at: datetime


class StatusChangeView(BaseModel):
    from_status: str | None
    to_status: str
    at: datetime
    cause_event_id: UUID | None = Field(description="The consumed event that moved the order")
    command: str | None = Field(description="The HTTP command that moved the order")
    actor: str


class TimelineEntryView(BaseModel):
    event_id: UUID
    event_type: str = Field(examples=["oms.Shipped.v1"])
    source: str = Field(
        description="Who emitted it: channel, order, inventory, fulfilment, returns or "
        "notification",
        examples=["fulfilment"],
    )
    occurred_at: datetime
    summary: str = Field(examples=["Shipment shp_1 shipped with colissimo, tracking TRK1"])
    details: dict[str, Any] = Field(description="The event's key fields")


class OrderSummary(BaseModel):
    order_id: str
    channel: str
    external_order_id: str
    status: str
    customer_id: str | None
    total: Money | None
    placed_at: datetime | None = Field(description="When the customer placed it in the channel")
    created_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary] = Field(description="Newest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class InvalidCursor(ValueError):
    pass


_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True)
class OrderCursor:
    """Where a page of the order listing ended: opaque to clients (base64 of JSON)."""

    created_at: datetime
    order_id: str

    def encode(self) -> str:
        text = json.dumps({"created_at": self.created_at.isoformat(), "order_id": self.order_id})
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> OrderCursor:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            fields = json.loads(raw)
            created_at = datetime.fromisoformat(fields["created_at"])
            order_id = fields["order_id"]
        except (binascii.Error, ValueError, TypeError, KeyError, RecursionError):
            raise InvalidCursor("not a cursor this listing gave out") from None
        if (
            created_at.tzinfo is None
            or not isinstance(order_id, str)
            or not _ORDER_ID.fullmatch(order_id)
        ):
            raise InvalidCursor("not a cursor this listing gave out")
        return cls(created_at=created_at, order_id=order_id)


class OrderView(BaseModel):
    order_id: str
    channel: str
    external_order_id: str
    status: str
    customer: Customer | None
    lines: list[LineView]
    currency: str | None
    subtotal: Money | None
    shipping_charge: Money | None
    total: Money | None
    total_discounts: Money | None
    total_tax: Money | None
    taxes_included: bool = False
    discounts: list[Discount] = []
    shipping_lines: list[ShippingLine] = []
    charges: list[Charge] = []
    billing_address: Address | None = None
    payment: ChannelPayment | None = None
    shipping_address: Address | None
    shipping_speed: str | None
    placed_at: datetime | None
    placed_by: str | None
    notes: str | None
    rejection_reasons: list[RejectionReasonView]
    reservation_id: str | None
    shipped_quantities: dict[str, int] = Field(description="Units shipped per SKU")
    returned_quantities: dict[str, int] = Field(description="Units returned per SKU")
    shipments: list[ShipmentView]
    returns: list[ReturnView]
    refunds: list[RefundView]
    notifications: list[NotificationView]
    status_history: list[StatusChangeView]
    delivered_at: datetime | None
    completed_at: datetime | None
    final_status: str | None
    created_at: datetime
    timeline: list[TimelineEntryView] = Field(
        description="Every event about the order from every service, oldest first"
    )
