"""What an order's timeline says about each event the order service sees: the service it
came from, one line a person can read, and the event's key fields (no I/O here).

Every event class of the topics the order service consumes or emits has a description,
except LowStockDetected, which is about a SKU and never about an order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import singledispatch
from typing import Any
from uuid import UUID

from contracts.base import Event
from contracts.catalogue import topic_of
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
from contracts.events.order import (
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderShippingAddressChanged,
)
from contracts.events.returns import (
    RefundIssued,
    ReturnApproved,
    Returned,
    ReturnReceived,
    ReturnRejected,
    ReturnRequested,
)

MAX_SUMMARY_CHARS = 500


@dataclass(frozen=True)
class Description:
    summary: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """One row of an order's timeline."""

    event_id: UUID
    event_type: str
    source: str
    occurred_at: datetime
    summary: str
    details: dict[str, Any]


def entry(event: Event, *, extra: dict[str, Any] | None = None) -> Entry:
    """The timeline row for an event; `extra` adds details only the recorder knows."""
    description = describe(event)
    details = {**description.details, **(extra or {})}
    return Entry(
        event_id=event.event_id,
        event_type=event.event_type(),
        source=source_of(type(event)),
        occurred_at=event.occurred_at,
        summary=_storable(description.summary)[:MAX_SUMMARY_CHARS],
        details=_storable(details),
    )


def source_of(event_class: type[Event]) -> str:
    """The emitting side, read off the topic: `oms.inventory.v1` → inventory; the
    inbound `oms.channel.orders.v1` → channel."""
    return topic_of(event_class).split(".")[1]


@singledispatch
def describe(event: Event) -> Description:
    raise LookupError(f"{type(event).__name__} has no timeline description")


def _fields(event: Event, *names: str) -> dict[str, Any]:
    dumped: dict[str, Any] = event.model_dump(mode="json", include=set(names))
    return dumped


def _units(quantities: Iterable[int]) -> str:
    total = sum(quantities)
    return f"{total} unit{'s' if total != 1 else ''}"


# --- channel and order --------------------------------------------------------------------


@describe.register
def _(event: OrderSubmitted) -> Description:
    return Description(
        f"Submitted by {event.channel} as {event.external_order_id}: "
        f"{len(event.lines)} line(s), {event.total!s}",
        {
            **_fields(event, "channel", "external_order_id", "total", "placed_by"),
            "customer_id": event.customer.customer_id,
            "line_count": len(event.lines),
        },
    )


@describe.register
def _(event: OrderPlaced) -> Description:
    discounts = (
        f", {event.total_discounts!s} off"
        if event.total_discounts and event.total_discounts.amount_minor
        else ""
    )
    tax = (
        f", tax {event.total_tax!s}{' included' if event.taxes_included else ''}"
        if event.total_tax and event.total_tax.amount_minor
        else ""
    )
    return Description(
        f"Order placed: {len(event.lines)} line(s), {event.total!s}{discounts}{tax}",
        {
            **_fields(
                event,
                "total",
                "total_discounts",
                "total_tax",
                "taxes_included",
                "placed_by",
                "shipping_speed",
            ),
            "line_count": len(event.lines),
        },
    )


@describe.register
def _(event: OrderRejected) -> Description:
    codes = sorted({reason.code.value for reason in event.reasons})
    return Description(
        f"Order rejected: {', '.join(codes)}",
        {
            **_fields(event, "channel", "external_order_id"),
            "reasons": [
                reason.model_dump(mode="json", include={"code", "field"})
                for reason in event.reasons
            ],
        },
    )


@describe.register
def _(event: OrderConfirmed) -> Description:
    return Description(
        f"Order confirmed: stock reserved ({event.reservation_id})",
        _fields(event, "reservation_id"),
    )


@describe.register
def _(event: OrderCancelled) -> Description:
    return Description(
        f"Order cancelled by {event.cancelled_by} ({event.reason.value})",
        _fields(event, "reason", "cancelled_by", "note"),
    )


@describe.register
def _(event: OrderShippingAddressChanged) -> Description:
    address = event.shipping_address
    place = ", ".join(part for part in (address.city, address.country) if part)
    return Description(
        f"Shipping address changed by {event.changed_by} to {place}",
        {
            **_fields(event, "changed_by"),
            "city": address.city,
            "postal_code": address.postal_code,
            "country": address.country,
        },
    )


@describe.register
def _(event: OrderCompleted) -> Description:
    return Description(
        f"Order completed: {event.final_status.value}", _fields(event, "final_status")
    )


# --- inventory ----------------------------------------------------------------------------


@describe.register
def _(event: StockReserved) -> Description:
    warehouses = sorted({allocation.warehouse_id for allocation in event.allocations})
    return Description(
        f"Stock reserved in {', '.join(warehouses)} ({event.reservation_id})",
        _fields(event, "reservation_id", "allocations"),
    )


@describe.register
def _(event: StockReservationFailed) -> Description:
    short = ", ".join(
        f"{shortage.sku} ({shortage.available} of {shortage.requested})"
        for shortage in event.shortages
    )
    return Description(f"Stock reservation failed: {short}", _fields(event, "shortages"))


@describe.register
def _(event: StockReleased) -> Description:
    return Description(
        f"Reserved stock released: {_units(a.quantity for a in event.allocations)} "
        f"({event.reservation_id})",
        _fields(event, "reservation_id", "allocations"),
    )


@describe.register
def _(event: StockCommitted) -> Description:
    return Description(
        f"Stock committed in {event.warehouse_id} for shipment {event.shipment_id}: "
        f"{_units(line.quantity for line in event.lines)}",
        _fields(event, "shipment_id", "warehouse_id", "lines"),
    )


@describe.register
def _(event: StockRestocked) -> Description:
    return Description(
        f"{_units(line.quantity for line in event.lines)} of return {event.return_id} "
        f"restocked in {event.warehouse_id}",
        _fields(event, "return_id", "warehouse_id", "lines"),
    )


# --- fulfilment ---------------------------------------------------------------------------


@describe.register
def _(event: ShipmentCreated) -> Description:
    return Description(
        f"Shipment {event.shipment_id} created in {event.warehouse_id} "
        f"({event.carrier}, {_units(line.quantity for line in event.lines)})",
        _fields(event, "shipment_id", "warehouse_id", "carrier", "shipping_method", "lines"),
    )


@describe.register
def _(event: ShipmentReplanned) -> Description:
    scope = "international" if event.international else "domestic"
    return Description(
        f"Shipment {event.shipment_id} re-planned for the new address: {event.carrier} "
        f"{event.shipping_method} ({scope}), {event.shipping_cost!s} "
        f"(was {event.previous_carrier}, {event.previous_shipping_cost!s})",
        _fields(
            event,
            "shipment_id",
            "carrier",
            "shipping_method",
            "shipping_cost",
            "international",
            "previous_carrier",
            "previous_shipping_cost",
        ),
    )


@describe.register
def _(event: ShipmentPacked) -> Description:
    return Description(
        f"Shipment {event.shipment_id} packed in {len(event.packages)} package(s)",
        {**_fields(event, "shipment_id"), "package_count": len(event.packages)},
    )


@describe.register
def _(event: Shipped) -> Description:
    return Description(
        f"Shipment {event.shipment_id} shipped with {event.carrier}, "
        f"tracking {event.tracking_number}",
        _fields(event, "shipment_id", "warehouse_id", "carrier", "tracking_number", "lines"),
    )


@describe.register
def _(event: Delivered) -> Description:
    return Description(
        f"Shipment {event.shipment_id} delivered",
        _fields(event, "shipment_id", "tracking_number", "delivered_at"),
    )


@describe.register
def _(event: ShipmentCancelled) -> Description:
    return Description(
        f"Shipment {event.shipment_id} cancelled ({event.reason.value})",
        _fields(event, "shipment_id", "reason"),
    )


# --- returns ------------------------------------------------------------------------------


@describe.register
def _(event: ReturnRequested) -> Description:
    return Description(
        f"Return {event.return_id} requested: {_units(line.quantity for line in event.lines)}",
        _fields(event, "return_id", "lines"),
    )


@describe.register
def _(event: ReturnApproved) -> Description:
    return Description(
        f"Return {event.return_id} approved (label {event.label_reference})",
        _fields(event, "return_id", "label_reference", "lines"),
    )


@describe.register
def _(event: ReturnRejected) -> Description:
    codes = sorted({reason.code.value for reason in event.reasons})
    return Description(
        f"Return {event.return_id} rejected: {', '.join(codes)}",
        {
            **_fields(event, "return_id"),
            "reasons": [
                reason.model_dump(mode="json", include={"code", "field"})
                for reason in event.reasons
            ],
        },
    )


@describe.register
def _(event: ReturnReceived) -> Description:
    restockable = sum(line.restockable_quantity for line in event.lines)
    return Description(
        f"Return {event.return_id} received in {event.warehouse_id}: "
        f"{_units(line.quantity for line in event.lines)}, {restockable} restockable",
        {
            **_fields(event, "return_id", "warehouse_id"),
            "lines": [
                line.model_dump(mode="json", include={"sku", "quantity", "restockable_quantity"})
                for line in event.lines
            ],
        },
    )


@describe.register
def _(event: Returned) -> Description:
    return Description(
        f"Return {event.return_id} settled: "
        f"{_units(line.quantity for line in event.lines)} returned",
        _fields(event, "return_id", "lines"),
    )


@describe.register
def _(event: RefundIssued) -> Description:
    return Description(
        f"Refund {event.refund_id} of {event.amount!s} issued for return {event.return_id}",
        _fields(event, "refund_id", "return_id", "amount", "policy"),
    )


# --- notification -------------------------------------------------------------------------

_NOTIFICATION_FIELDS = ("notification_id", "channel", "template", "cause_event_type", "attempts")


@describe.register
def _(event: NotificationSent) -> Description:
    return Description(
        f"{event.channel.value} '{event.template}' sent to {event.recipient}",
        _fields(event, *_NOTIFICATION_FIELDS, "recipient"),
    )


@describe.register
def _(event: NotificationFailed) -> Description:
    return Description(
        f"{event.channel.value} '{event.template}' to {event.recipient} failed: {event.error}",
        _fields(event, *_NOTIFICATION_FIELDS, "recipient", "error"),
    )


@describe.register
def _(event: NotificationSkipped) -> Description:
    return Description(
        f"{event.channel.value} '{event.template}' not sent: {event.reason.value}",
        _fields(event, "notification_id", "channel", "template", "cause_event_type", "reason"),
    )


def _storable(value: Any) -> Any:
    """PostgreSQL text and JSONB cannot hold NUL characters; free text that reaches the
    timeline (a mail server's error, a note) is shown with a replacement character."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value
