"""The rows of the order service's tables as typed values: what the queries read and what
the use cases write, whichever way they reach the database (SQLAlchemy for HTTP commands
and queries, asyncpg for consumed batches). Each read row has exactly its table's columns;
JSONB columns hold decoded JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

JsonValue = Any
"""A value as stored in a JSONB column (decoded JSON)."""


@dataclass(frozen=True, slots=True)
class ChangeCause:
    """Why a status changed, for the status history: a consumed event or a command."""

    actor: str
    event_id: UUID | None = None
    command: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A row to add to the status history (the database numbers and dates it)."""

    order_id: str
    from_status: str | None
    to_status: str
    cause: ChangeCause


@dataclass(frozen=True, slots=True)
class NewOrder:
    """The orders row the intake makes of a submission. A rejected order keeps no amounts
    (its currencies may disagree); one that broke the contract keeps nothing but its
    identity and its reasons."""

    order_id: str
    channel: str
    external_order_id: str
    status: str
    rejection_reasons: JsonValue = None
    customer: JsonValue = None
    shipping_address: JsonValue = None
    shipping_speed: str | None = None
    placed_at: datetime | None = None
    placed_by: str | None = None
    notes: str | None = None
    currency: str | None = None
    subtotal_minor: int | None = None
    shipping_charge_minor: int | None = None
    total_minor: int | None = None
    total_discounts_minor: int | None = None
    total_tax_minor: int | None = None
    pricing: JsonValue = None


@dataclass(frozen=True, slots=True)
class OrderRow:
    order_id: str
    channel: str
    external_order_id: str
    status: str
    customer: JsonValue
    currency: str | None
    subtotal_minor: int | None
    shipping_charge_minor: int | None
    total_minor: int | None
    total_discounts_minor: int | None
    total_tax_minor: int | None
    pricing: JsonValue
    shipping_address: JsonValue
    shipping_speed: str | None
    placed_at: datetime | None
    placed_by: str | None
    notes: str | None
    rejection_reasons: JsonValue
    reservation_id: str | None
    delivered_at: datetime | None
    completed_at: datetime | None
    final_status: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LineRow:
    order_id: str
    position: int
    line_id: str
    sku: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int
    title: str | None
    discounted_total_minor: int | None
    tax_minor: int | None
    pricing: JsonValue


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: int
    order_id: str
    from_status: str | None
    to_status: str
    at: datetime
    cause_event_id: UUID | None
    command: str | None
    actor: str


@dataclass(frozen=True, slots=True)
class ShipmentRow:
    order_id: str
    shipment_id: str
    warehouse_id: str | None
    carrier: str | None
    shipping_method: str | None
    tracking_number: str | None
    planned_lines: JsonValue
    shipped_lines: JsonValue
    created_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: str | None


@dataclass(frozen=True, slots=True)
class ReturnRow:
    order_id: str
    return_id: str
    requested_lines: JsonValue
    requested_at: datetime | None
    rejected_at: datetime | None
    returned_lines: JsonValue
    returned_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefundRow:
    order_id: str
    refund_id: str
    return_id: str
    currency: str
    amount_minor: int
    lines_amount_minor: int
    shipping_refunded_minor: int
    goods_amount_minor: int | None
    tax_amount_minor: int | None
    shipping_amount_minor: int | None
    policy: str
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class NotificationRow:
    order_id: str
    notification_id: str
    cause_event_id: UUID
    cause_event_type: str
    channel: str
    recipient: str
    template: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineRow:
    event_id: UUID
    order_id: str
    event_type: str
    source: str
    occurred_at: datetime
    summary: str
    details: dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class ProductRow:
    sku: str
    name: str
    active: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class IdempotencyKeyRow:
    key: str
    body_hash: str
    response_status: int
    order_id: str
    created_at: datetime
