"""What the order service shows of an order and its catalogue: the read models that the
query use cases build and the HTTP API returns."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import Money
from contracts.events.common import Address, Customer, SkuQuantity


class ProductView(BaseModel):
    sku: str
    name: str
    active: bool = Field(description="Only active products can be ordered")


class LineView(BaseModel):
    line_id: str
    sku: str
    quantity: int
    unit_price: Money
    line_total: Money


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


class OrderSummary(BaseModel):
    order_id: str
    channel: str
    external_order_id: str
    status: str
    customer_id: str | None
    total: Money | None
    created_at: datetime


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
