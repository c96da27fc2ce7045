"""What one consumed batch works on: its orders, typed, in memory while the batch is
applied, loaded with one query per table and saved with one statement per table.

`load` reads what the batch's events need:
- the orders they are about, locked in order id order: replicas applying batches that
  share orders cannot deadlock, and a command on one of those orders waits for the batch;
- for the orders whose shipment or return facts arrive (`FACT_EVENTS`), their lines,
  shipments and returns, from which those facts decide the order's status;
- for submissions, which (channel, external_order_id) are already orders, and which of
  their SKUs are sellable.

The use cases change this state event by event, in the order consumed: an order that
appears twice in a batch sees its own first change (an order placed by the batch is in it
too). `save` then writes each table once, only what changed: orders inserted and updated,
lines, status history, shipment and return facts, refunds, notifications, timeline.

The unique (channel, external_order_id) decides between concurrent intakes: when another
transaction placed one of the batch's new channel orders since the load, `save` raises
`ConcurrentIntake`; the batch rolls back and, applied again, finds that order and answers
the submission as its duplicate. Nothing is lost, nothing is placed twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TypeVar

import asyncpg
from pydantic import TypeAdapter

from contracts.base import Event, OrderEvent
from contracts.events.channel import OrderSubmitted
from contracts.events.common import SkuQuantity
from contracts.events.fulfilment import (
    Delivered,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentReplanned,
    Shipped,
)
from contracts.events.returns import Returned, ReturnRejected, ReturnRequested, ReturnRequestLine
from services.kit.batch import Context
from services.order import domain, timeline
from services.order.domain import OrderStatus, Transition
from services.order.rows import (
    ChangeCause,
    JsonValue,
    LineRow,
    NewOrder,
    NotificationRow,
    RefundRow,
    StatusChange,
)

FACT_EVENTS: tuple[type[OrderEvent], ...] = (
    ShipmentCreated,
    ShipmentReplanned,
    Shipped,
    Delivered,
    ShipmentCancelled,
    ReturnRequested,
    ReturnRejected,
    Returned,
)
"""The events that record a shipment or return fact: the facts then decide the status."""

# NO KEY UPDATE: it excludes every other writer of the order as FOR UPDATE does, but not
# the key-share locks of rows that refer to the order (another batch adding a duplicate
# submission's timeline entry), which could otherwise wait on us while we wait on them.
_LOCK_ORDERS = """
SELECT order_id, status, reservation_id, delivered_at, completed_at IS NOT NULL AS completed
FROM orders
WHERE order_id = ANY($1::text[])
ORDER BY order_id
FOR NO KEY UPDATE
"""
_LINES = """
SELECT order_id, sku, quantity FROM order_lines WHERE order_id = ANY($1::text[])
"""
_SHIPMENTS = """
SELECT order_id, shipment_id, shipped_lines, delivered_at, cancelled_at IS NOT NULL AS cancelled
FROM order_shipments
WHERE order_id = ANY($1::text[])
"""
_RETURNS = """
SELECT order_id, return_id, requested_at IS NOT NULL AS requested,
    rejected_at IS NOT NULL AS rejected, returned_lines
FROM order_returns
WHERE order_id = ANY($1::text[])
"""
_KNOWN_CHANNEL_ORDERS = """
SELECT order_id, channel, external_order_id
FROM orders
JOIN unnest($1::text[], $2::text[]) AS submitted(channel, external_order_id)
    USING (channel, external_order_id)
"""
_SELLABLE_SKUS = """
SELECT sku FROM products WHERE sku = ANY($1::text[]) AND active
"""
_INSERT_ORDERS = """
INSERT INTO orders (
    order_id, channel, external_order_id, status, rejection_reasons, customer,
    shipping_address, shipping_speed, placed_at, placed_by, notes, currency,
    subtotal_minor, shipping_charge_minor, total_minor, total_discounts_minor,
    total_tax_minor, pricing, reservation_id, delivered_at
)
SELECT order_id, channel, external_order_id, status, rejection_reasons::jsonb, customer::jsonb,
    shipping_address::jsonb, shipping_speed, placed_at, placed_by, notes, currency,
    subtotal_minor, shipping_charge_minor, total_minor, total_discounts_minor,
    total_tax_minor, pricing::jsonb, reservation_id, delivered_at
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::text[], $12::text[],
    $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],
    $17::bigint[], $18::text[], $19::text[], $20::timestamptz[]
) AS new(
    order_id, channel, external_order_id, status, rejection_reasons, customer,
    shipping_address, shipping_speed, placed_at, placed_by, notes, currency,
    subtotal_minor, shipping_charge_minor, total_minor, total_discounts_minor,
    total_tax_minor, pricing, reservation_id, delivered_at
)
ON CONFLICT (channel, external_order_id) DO NOTHING
RETURNING order_id
"""
_UPDATE_ORDERS = """
UPDATE orders
SET status = changed.status,
    reservation_id = changed.reservation_id,
    delivered_at = changed.delivered_at,
    updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
    AS changed(order_id, status, reservation_id, delivered_at)
WHERE orders.order_id = changed.order_id
"""
_INSERT_LINES = """
INSERT INTO order_lines (
    order_id, position, line_id, sku, quantity, unit_price_minor, line_total_minor, title,
    discounted_total_minor, tax_minor, pricing
)
SELECT order_id, position, line_id, sku, quantity, unit_price_minor, line_total_minor, title,
    discounted_total_minor, tax_minor, pricing::jsonb
FROM unnest(
    $1::text[], $2::int[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::bigint[],
    $8::text[], $9::bigint[], $10::bigint[], $11::text[]
) AS line(
    order_id, position, line_id, sku, quantity, unit_price_minor, line_total_minor, title,
    discounted_total_minor, tax_minor, pricing
)
"""
# The history is read in id order: the ids are drawn in the order the changes were made.
_INSERT_HISTORY = """
INSERT INTO order_status_history (order_id, from_status, to_status, cause_event_id, command, actor)
SELECT order_id, from_status, to_status, cause_event_id, command, actor
FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[])
    WITH ORDINALITY AS change(
        order_id, from_status, to_status, cause_event_id, command, actor, made
    )
ORDER BY made
"""
# What an event says of a shipment or return completes what earlier events said.
_UPSERT_SHIPMENTS = """
INSERT INTO order_shipments AS stored (
    order_id, shipment_id, warehouse_id, carrier, shipping_method, tracking_number,
    planned_lines, shipped_lines, created_at, shipped_at, delivered_at, cancelled_at,
    cancellation_reason
)
SELECT order_id, shipment_id, warehouse_id, carrier, shipping_method, tracking_number,
    planned_lines::jsonb, shipped_lines::jsonb, created_at, shipped_at, delivered_at,
    cancelled_at, cancellation_reason
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
    $12::timestamptz[], $13::text[]
) AS news(
    order_id, shipment_id, warehouse_id, carrier, shipping_method, tracking_number,
    planned_lines, shipped_lines, created_at, shipped_at, delivered_at, cancelled_at,
    cancellation_reason
)
ON CONFLICT (order_id, shipment_id) DO UPDATE SET
    warehouse_id = coalesce(EXCLUDED.warehouse_id, stored.warehouse_id),
    carrier = coalesce(EXCLUDED.carrier, stored.carrier),
    shipping_method = coalesce(EXCLUDED.shipping_method, stored.shipping_method),
    tracking_number = coalesce(EXCLUDED.tracking_number, stored.tracking_number),
    planned_lines = coalesce(EXCLUDED.planned_lines, stored.planned_lines),
    shipped_lines = coalesce(EXCLUDED.shipped_lines, stored.shipped_lines),
    created_at = coalesce(EXCLUDED.created_at, stored.created_at),
    shipped_at = coalesce(EXCLUDED.shipped_at, stored.shipped_at),
    delivered_at = coalesce(EXCLUDED.delivered_at, stored.delivered_at),
    cancelled_at = coalesce(EXCLUDED.cancelled_at, stored.cancelled_at),
    cancellation_reason = coalesce(EXCLUDED.cancellation_reason, stored.cancellation_reason)
"""
_UPSERT_RETURNS = """
INSERT INTO order_returns AS stored (
    order_id, return_id, requested_lines, requested_at, rejected_at, returned_lines, returned_at
)
SELECT order_id, return_id, requested_lines::jsonb, requested_at, rejected_at,
    returned_lines::jsonb, returned_at
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[],
    $7::timestamptz[]
) AS news(
    order_id, return_id, requested_lines, requested_at, rejected_at, returned_lines, returned_at
)
ON CONFLICT (order_id, return_id) DO UPDATE SET
    requested_lines = coalesce(EXCLUDED.requested_lines, stored.requested_lines),
    requested_at = coalesce(EXCLUDED.requested_at, stored.requested_at),
    rejected_at = coalesce(EXCLUDED.rejected_at, stored.rejected_at),
    returned_lines = coalesce(EXCLUDED.returned_lines, stored.returned_lines),
    returned_at = coalesce(EXCLUDED.returned_at, stored.returned_at)
"""
_INSERT_REFUNDS = """
INSERT INTO order_refunds (
    order_id, refund_id, return_id, currency, amount_minor, lines_amount_minor,
    shipping_refunded_minor, goods_amount_minor, tax_amount_minor, shipping_amount_minor,
    policy, issued_at
)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
    $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::timestamptz[]
)
ON CONFLICT (order_id, refund_id) DO NOTHING
"""
_INSERT_NOTIFICATIONS = """
INSERT INTO order_notifications (
    order_id, notification_id, cause_event_id, cause_event_type, channel, recipient,
    template, sent_at
)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::timestamptz[]
)
ON CONFLICT (order_id, notification_id) DO NOTHING
"""
_INSERT_TIMELINE = """
INSERT INTO order_timeline (event_id, order_id, event_type, source, occurred_at, summary, details)
SELECT event_id, order_id, event_type, source, occurred_at, summary, details::jsonb
FROM unnest(
    $1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[]
) AS entry(event_id, order_id, event_type, source, occurred_at, summary, details)
ON CONFLICT (event_id) DO NOTHING
"""

_SKU_LINES = TypeAdapter(tuple[SkuQuantity, ...])
_REQUESTED_LINES = TypeAdapter(tuple[ReturnRequestLine, ...])


class ConcurrentIntake(Exception):
    """Another transaction placed one of the batch's new channel orders since the load: the
    batch must be applied again, and will then answer the submission as a duplicate."""


# --- the state --------------------------------------------------------------------------------


@dataclass(slots=True)
class OrderFacts:
    """What decides an order's status once goods move: its units ordered per SKU, and what
    is known of each shipment and return."""

    ordered: dict[str, int]
    shipments: dict[str, domain.ShipmentFacts] = field(default_factory=dict)
    returns: dict[str, domain.ReturnFacts] = field(default_factory=dict)


@dataclass(slots=True)
class OrderState:
    """An order as the batch sees it: stored (and locked), or placed by the batch."""

    order_id: str
    status: OrderStatus
    reservation_id: str | None
    delivered_at: datetime | None
    completed: bool
    facts: OrderFacts | None
    """Loaded for the orders of `FACT_EVENTS` (and for those the batch places)."""
    changed: bool = False

    def loaded_facts(self) -> OrderFacts:
        assert self.facts is not None, "the batch loads the facts of every order of FACT_EVENTS"
        return self.facts

    def reserve(self, reservation_id: str) -> None:
        self.reservation_id = reservation_id
        self.changed = True

    def deliver(self, delivered_at: datetime | None) -> None:
        self.delivered_at = delivered_at
        self.changed = True


@dataclass(frozen=True, slots=True)
class ShipmentChange:
    """What the batch's events say of one shipment; None: they say nothing of it."""

    warehouse_id: str | None = None
    carrier: str | None = None
    shipping_method: str | None = None
    tracking_number: str | None = None
    planned_lines: tuple[SkuQuantity, ...] | None = None
    shipped_lines: tuple[SkuQuantity, ...] | None = None
    created_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancellation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnChange:
    """What the batch's events say of one return; None: they say nothing of it."""

    requested_lines: tuple[ReturnRequestLine, ...] | None = None
    requested_at: datetime | None = None
    rejected_at: datetime | None = None
    returned_lines: tuple[SkuQuantity, ...] | None = None
    returned_at: datetime | None = None


ChangeT = TypeVar("ChangeT", ShipmentChange, ReturnChange)


def _then(earlier: ChangeT | None, later: ChangeT) -> ChangeT:
    """What a later event says wins; what it leaves out stays as the earlier one said."""
    if earlier is None:
        return later
    said = {
        name: value
        for name in (attribute.name for attribute in fields(later))
        if (value := getattr(later, name)) is not None
    }
    return replace(earlier, **said)


@dataclass(slots=True)
class OrderBatch:
    """The state of one batch: the orders it is about, and what it will write."""

    orders: dict[str, OrderState]
    order_ids_by_channel_id: dict[tuple[str, str], str]
    """The channel orders (channel, external_order_id) of the batch's submissions already
    placed, and those the batch places."""
    sellable_skus: frozenset[str]
    """Of the SKUs the batch's new submissions order."""
    new_orders: dict[str, NewOrder] = field(default_factory=dict)
    lines: list[LineRow] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)
    shipments: dict[tuple[str, str], ShipmentChange] = field(default_factory=dict)
    """By (order id, shipment id)."""
    returns: dict[tuple[str, str], ReturnChange] = field(default_factory=dict)
    """By (order id, return id)."""
    refunds: list[RefundRow] = field(default_factory=list)
    notifications: list[NotificationRow] = field(default_factory=list)
    timeline_entries: list[tuple[str, timeline.Entry]] = field(default_factory=list)
    """With the id of the order whose timeline they join."""

    def order(self, order_id: str) -> OrderState | None:
        return self.orders.get(order_id)

    def order_id_of(self, channel: str, external_order_id: str) -> str | None:
        return self.order_ids_by_channel_id.get((channel, external_order_id))

    def add_order(self, order: NewOrder, lines: Sequence[LineRow], cause: ChangeCause) -> None:
        """An order the intake made of a submission, with its first status."""
        self.new_orders[order.order_id] = order
        self.order_ids_by_channel_id[(order.channel, order.external_order_id)] = order.order_id
        self.orders[order.order_id] = OrderState(
            order_id=order.order_id,
            status=OrderStatus(order.status),
            reservation_id=None,
            delivered_at=None,
            completed=False,
            facts=OrderFacts(
                ordered=domain.quantities((line.sku, line.quantity) for line in lines)
            ),
        )
        self.lines.extend(lines)
        self.history.append(StatusChange(order.order_id, None, order.status, cause))

    def change_status(self, order: OrderState, change: Transition, cause: ChangeCause) -> None:
        order.status = change.to_status
        order.changed = True
        self.history.append(
            StatusChange(order.order_id, change.from_status.value, change.to_status.value, cause)
        )

    def record(self, order_id: str, entry: timeline.Entry) -> None:
        """Adds an entry to the order's timeline."""
        self.timeline_entries.append((order_id, entry))

    def record_shipment(self, order: OrderState, shipment_id: str, change: ShipmentChange) -> None:
        """Adds what an event says of a shipment to what is known of it."""
        key = (order.order_id, shipment_id)
        self.shipments[key] = _then(self.shipments.get(key), change)
        facts = order.loaded_facts()
        known = facts.shipments.get(shipment_id) or domain.ShipmentFacts(
            shipment_id, shipped_lines=None, delivered_at=None, cancelled=False
        )
        facts.shipments[shipment_id] = domain.ShipmentFacts(
            shipment_id=shipment_id,
            shipped_lines=(
                known.shipped_lines
                if change.shipped_lines is None
                else _quantities(change.shipped_lines)
            ),
            delivered_at=change.delivered_at or known.delivered_at,
            cancelled=known.cancelled or change.cancelled_at is not None,
        )

    def record_return(self, order: OrderState, return_id: str, change: ReturnChange) -> None:
        """Adds what an event says of a return to what is known of it."""
        key = (order.order_id, return_id)
        self.returns[key] = _then(self.returns.get(key), change)
        facts = order.loaded_facts()
        known = facts.returns.get(return_id) or domain.ReturnFacts(
            return_id, requested=False, rejected=False, returned_lines=None
        )
        facts.returns[return_id] = domain.ReturnFacts(
            return_id=return_id,
            requested=known.requested or change.requested_at is not None,
            rejected=known.rejected or change.rejected_at is not None,
            returned_lines=(
                known.returned_lines
                if change.returned_lines is None
                else _quantities(change.returned_lines)
            ),
        )


def announce(batch: OrderBatch, context: Context, event: OrderEvent) -> None:
    """Emits an event of the order service: every one is also an entry of its order's
    timeline."""
    context.emit(event)
    batch.record(event.order_id, timeline.entry(event))


def _quantities(lines: Sequence[SkuQuantity]) -> dict[str, int]:
    return domain.quantities((line.sku, line.quantity) for line in lines)


# --- load -------------------------------------------------------------------------------------


async def load(connection: asyncpg.Connection, events: Sequence[Event]) -> OrderBatch:
    submissions = [event for event in events if isinstance(event, OrderSubmitted)]
    about = sorted({event.subject() for event in events if not isinstance(event, OrderSubmitted)})
    orders = await _lock_orders(connection, about) if about else {}
    with_facts = sorted(
        {event.subject() for event in events if isinstance(event, FACT_EVENTS)} & orders.keys()
    )
    if with_facts:
        await _load_facts(connection, with_facts, orders)
    known = await _known_channel_orders(connection, submissions) if submissions else {}
    new_skus = {
        line.sku
        for submitted in submissions
        if (submitted.channel, submitted.external_order_id) not in known
        for line in submitted.lines
    }
    sellable = (
        frozenset(row["sku"] for row in await connection.fetch(_SELLABLE_SKUS, list(new_skus)))
        if new_skus
        else frozenset()
    )
    return OrderBatch(orders=orders, order_ids_by_channel_id=known, sellable_skus=sellable)


async def _lock_orders(
    connection: asyncpg.Connection, order_ids: list[str]
) -> dict[str, OrderState]:
    return {
        row["order_id"]: OrderState(
            order_id=row["order_id"],
            status=OrderStatus(row["status"]),
            reservation_id=row["reservation_id"],
            delivered_at=row["delivered_at"],
            completed=row["completed"],
            facts=None,
        )
        for row in await connection.fetch(_LOCK_ORDERS, order_ids)
    }


async def _load_facts(
    connection: asyncpg.Connection, order_ids: list[str], orders: dict[str, OrderState]
) -> None:
    facts = {order_id: OrderFacts(ordered={}) for order_id in order_ids}
    for row in await connection.fetch(_LINES, order_ids):
        ordered = facts[row["order_id"]].ordered
        ordered[row["sku"]] = ordered.get(row["sku"], 0) + row["quantity"]
    for row in await connection.fetch(_SHIPMENTS, order_ids):
        facts[row["order_id"]].shipments[row["shipment_id"]] = domain.ShipmentFacts(
            shipment_id=row["shipment_id"],
            shipped_lines=_stored_quantities(row["shipped_lines"]),
            delivered_at=row["delivered_at"],
            cancelled=row["cancelled"],
        )
    for row in await connection.fetch(_RETURNS, order_ids):
        facts[row["order_id"]].returns[row["return_id"]] = domain.ReturnFacts(
            return_id=row["return_id"],
            requested=row["requested"],
            rejected=row["rejected"],
            returned_lines=_stored_quantities(row["returned_lines"]),
        )
    for order_id, order_facts in facts.items():
        orders[order_id].facts = order_facts


def _stored_quantities(lines: str | None) -> dict[str, int] | None:
    """Units per SKU of a JSONB column of lines (asyncpg reads JSONB as its text)."""
    if lines is None:
        return None
    return domain.quantities((line["sku"], line["quantity"]) for line in json.loads(lines))


async def _known_channel_orders(
    connection: asyncpg.Connection, submissions: Sequence[OrderSubmitted]
) -> dict[tuple[str, str], str]:
    wanted = sorted({(submitted.channel, submitted.external_order_id) for submitted in submissions})
    rows = await connection.fetch(
        _KNOWN_CHANNEL_ORDERS,
        [channel for channel, _ in wanted],
        [external_order_id for _, external_order_id in wanted],
    )
    return {(row["channel"], row["external_order_id"]): row["order_id"] for row in rows}


# --- save -------------------------------------------------------------------------------------


async def save(connection: asyncpg.Connection, batch: OrderBatch) -> None:
    """Writes what the batch changed, one statement per table, orders first (the other
    tables refer to them)."""
    await _insert_orders(connection, batch)
    await _update_orders(connection, batch)
    if batch.lines:
        await _insert_lines(connection, batch.lines)
    if batch.history:
        await _insert_history(connection, batch.history)
    if batch.shipments:
        await _upsert_shipments(connection, batch.shipments)
    if batch.returns:
        await _upsert_returns(connection, batch.returns)
    if batch.refunds:
        await _insert_refunds(connection, batch.refunds)
    if batch.notifications:
        await _insert_notifications(connection, batch.notifications)
    if batch.timeline_entries:
        await _insert_timeline(connection, batch.timeline_entries)


async def _insert_orders(connection: asyncpg.Connection, batch: OrderBatch) -> None:
    """The orders the batch placed or rejected, as they are at its end. Concurrent batches
    insert their channel orders in the same (sorted) order, so they wait on each other's
    in one direction only."""
    if not batch.new_orders:
        return
    new = sorted(
        batch.new_orders.values(), key=lambda order: (order.channel, order.external_order_id)
    )
    states = [batch.orders[order.order_id] for order in new]
    inserted = await connection.fetch(
        _INSERT_ORDERS,
        [order.order_id for order in new],
        [order.channel for order in new],
        [order.external_order_id for order in new],
        [state.status.value for state in states],
        [_json(order.rejection_reasons) for order in new],
        [_json(order.customer) for order in new],
        [_json(order.shipping_address) for order in new],
        [order.shipping_speed for order in new],
        [order.placed_at for order in new],
        [order.placed_by for order in new],
        [order.notes for order in new],
        [order.currency for order in new],
        [order.subtotal_minor for order in new],
        [order.shipping_charge_minor for order in new],
        [order.total_minor for order in new],
        [order.total_discounts_minor for order in new],
        [order.total_tax_minor for order in new],
        [_json(order.pricing) for order in new],
        [state.reservation_id for state in states],
        [state.delivered_at for state in states],
    )
    if len(inserted) < len(new):
        placed = {row["order_id"] for row in inserted}
        taken = [
            f"{order.channel}:{order.external_order_id}"
            for order in new
            if order.order_id not in placed
        ]
        raise ConcurrentIntake(f"placed meanwhile by another transaction: {', '.join(taken)}")


async def _update_orders(connection: asyncpg.Connection, batch: OrderBatch) -> None:
    changed = [
        order
        for order in batch.orders.values()
        if order.changed and order.order_id not in batch.new_orders
    ]
    if changed:
        await connection.execute(
            _UPDATE_ORDERS,
            [order.order_id for order in changed],
            [order.status.value for order in changed],
            [order.reservation_id for order in changed],
            [order.delivered_at for order in changed],
        )


async def _insert_lines(connection: asyncpg.Connection, lines: Sequence[LineRow]) -> None:
    await connection.execute(
        _INSERT_LINES,
        [line.order_id for line in lines],
        [line.position for line in lines],
        [line.line_id for line in lines],
        [line.sku for line in lines],
        [line.quantity for line in lines],
        [line.unit_price_minor for line in lines],
        [line.line_total_minor for line in lines],
        [line.title for line in lines],
        [line.discounted_total_minor for line in lines],
        [line.tax_minor for line in lines],
        [_json(line.pricing) for line in lines],
    )


async def _insert_history(connection: asyncpg.Connection, history: Sequence[StatusChange]) -> None:
    await connection.execute(
        _INSERT_HISTORY,
        [change.order_id for change in history],
        [change.from_status for change in history],
        [change.to_status for change in history],
        [change.cause.event_id for change in history],
        [change.cause.command for change in history],
        [change.cause.actor for change in history],
    )


async def _upsert_shipments(
    connection: asyncpg.Connection, shipments: dict[tuple[str, str], ShipmentChange]
) -> None:
    keys = sorted(shipments)
    news = [shipments[key] for key in keys]
    await connection.execute(
        _UPSERT_SHIPMENTS,
        [order_id for order_id, _ in keys],
        [shipment_id for _, shipment_id in keys],
        [change.warehouse_id for change in news],
        [change.carrier for change in news],
        [change.shipping_method for change in news],
        [change.tracking_number for change in news],
        [_lines_json(change.planned_lines) for change in news],
        [_lines_json(change.shipped_lines) for change in news],
        [change.created_at for change in news],
        [change.shipped_at for change in news],
        [change.delivered_at for change in news],
        [change.cancelled_at for change in news],
        [change.cancellation_reason for change in news],
    )


async def _upsert_returns(
    connection: asyncpg.Connection, returns: dict[tuple[str, str], ReturnChange]
) -> None:
    keys = sorted(returns)
    news = [returns[key] for key in keys]
    await connection.execute(
        _UPSERT_RETURNS,
        [order_id for order_id, _ in keys],
        [return_id for _, return_id in keys],
        [
            None
            if change.requested_lines is None
            else _REQUESTED_LINES.dump_json(change.requested_lines).decode()
            for change in news
        ],
        [change.requested_at for change in news],
        [change.rejected_at for change in news],
        [_lines_json(change.returned_lines) for change in news],
        [change.returned_at for change in news],
    )


async def _insert_refunds(connection: asyncpg.Connection, refunds: Sequence[RefundRow]) -> None:
    await connection.execute(
        _INSERT_REFUNDS,
        [refund.order_id for refund in refunds],
        [refund.refund_id for refund in refunds],
        [refund.return_id for refund in refunds],
        [refund.currency for refund in refunds],
        [refund.amount_minor for refund in refunds],
        [refund.lines_amount_minor for refund in refunds],
        [refund.shipping_refunded_minor for refund in refunds],
        [refund.goods_amount_minor for refund in refunds],
        [refund.tax_amount_minor for refund in refunds],
        [refund.shipping_amount_minor for refund in refunds],
        [refund.policy for refund in refunds],
        [refund.issued_at for refund in refunds],
    )


async def _insert_notifications(
    connection: asyncpg.Connection, notifications: Sequence[NotificationRow]
) -> None:
    await connection.execute(
        _INSERT_NOTIFICATIONS,
        [sent.order_id for sent in notifications],
        [sent.notification_id for sent in notifications],
        [sent.cause_event_id for sent in notifications],
        [sent.cause_event_type for sent in notifications],
        [sent.channel for sent in notifications],
        [sent.recipient for sent in notifications],
        [sent.template for sent in notifications],
        [sent.sent_at for sent in notifications],
    )


async def _insert_timeline(
    connection: asyncpg.Connection, entries: Sequence[tuple[str, timeline.Entry]]
) -> None:
    await connection.execute(
        _INSERT_TIMELINE,
        [entry.event_id for _, entry in entries],
        [order_id for order_id, _ in entries],
        [entry.event_type for _, entry in entries],
        [entry.source for _, entry in entries],
        [entry.occurred_at for _, entry in entries],
        [entry.summary for _, entry in entries],
        [json.dumps(entry.details) for _, entry in entries],
    )


def _json(value: JsonValue) -> str | None:
    """A JSONB parameter as asyncpg takes it: its text (None stays SQL NULL)."""
    return None if value is None else json.dumps(value)


def _lines_json(lines: tuple[SkuQuantity, ...] | None) -> str | None:
    return None if lines is None else _SKU_LINES.dump_json(lines).decode()
