"""The order facts one consumed batch records: placements, shipments and deliveries, kept
in memory while the batch is applied (so an order seen twice sees its own first fact) and
then written with one statement per table.

`load` locks the batch's orders already stored, in key order: replicas applying batches
that share orders cannot deadlock, and a command on one of those orders waits for the
batch. Nothing else is read: which facts are new is settled by the rules below, in memory
within the batch and by the primary keys against what is stored, so a batch costs the
same handful of statements however many events it holds.

Rules, as the facts arrive from two topics in any order:
- the latest placement of an order counts; an order line once recorded stays as it was;
- the first report of a shipment counts, with its lines (a shipment already stored keeps
  its own); an order first seen shipped gets its row, its placement filled in later;
- the first delivery report of a shipment counts; a delivery alone does not make an
  order known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from contracts.base import Event
from services.returns import domain

_LOCK_STORED_ORDERS = """
SELECT order_id FROM orders WHERE order_id = ANY($1::text[]) ORDER BY order_id FOR UPDATE
"""
# A row without a placement (an order first seen shipped) never overwrites a placement
# another transaction stored after this batch's load.
_WRITE_ORDERS = """
INSERT INTO orders
    (order_id, currency, shipping_paid_minor, shipping_tax_minor, customer_id, placed_at)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::timestamptz[]
)
ON CONFLICT (order_id) DO UPDATE SET
    currency = EXCLUDED.currency,
    shipping_paid_minor = EXCLUDED.shipping_paid_minor,
    shipping_tax_minor = EXCLUDED.shipping_tax_minor,
    customer_id = EXCLUDED.customer_id,
    placed_at = EXCLUDED.placed_at
WHERE EXCLUDED.currency IS NOT NULL
"""
_WRITE_ORDER_LINES = """
INSERT INTO order_lines (order_id, line_id, sku, quantity, paid_minor, tax_minor)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[]
)
ON CONFLICT (order_id, line_id) DO NOTHING
"""
# A shipment's lines go in only with the shipment itself: one already stored keeps its own.
_WRITE_SHIPMENTS = """
WITH new_shipments AS (
    INSERT INTO shipments (order_id, shipment_id, warehouse_id, shipped_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
    ON CONFLICT (order_id, shipment_id) DO NOTHING
    RETURNING order_id, shipment_id
)
INSERT INTO shipment_lines (order_id, shipment_id, sku, quantity)
SELECT line.order_id, line.shipment_id, line.sku, line.quantity
FROM unnest($5::text[], $6::text[], $7::text[], $8::int[])
    AS line(order_id, shipment_id, sku, quantity)
JOIN new_shipments USING (order_id, shipment_id)
"""
_WRITE_DELIVERIES = """
INSERT INTO deliveries (order_id, shipment_id, delivered_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT (order_id, shipment_id) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    placement: domain.Placement
    placed_at: datetime


@dataclass(slots=True)
class OrderFactsBatch:
    """What the batch found stored (`stored_orders`, locked) and the facts it records,
    keyed as their tables are."""

    stored_orders: frozenset[str]
    placements: dict[str, PlacedOrder] = field(default_factory=dict)
    lines: dict[tuple[str, str], domain.OrderedLine] = field(default_factory=dict)
    """By (order id, line id)."""
    shipments: dict[tuple[str, str], domain.Shipment] = field(default_factory=dict)
    """By (order id, shipment id)."""
    deliveries: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """Delivery times by (order id, shipment id)."""

    def record_placement(
        self,
        order_id: str,
        placement: domain.Placement,
        line_ids: Sequence[str],
        placed_at: datetime,
    ) -> None:
        self.placements[order_id] = PlacedOrder(placement, placed_at)
        for line_id, line in zip(line_ids, placement.lines, strict=True):
            self.lines.setdefault((order_id, line_id), line)

    def record_shipment(self, order_id: str, shipment: domain.Shipment) -> None:
        self.shipments.setdefault((order_id, shipment.shipment_id), shipment)

    def record_delivery(self, order_id: str, shipment_id: str, delivered_at: datetime) -> None:
        self.deliveries.setdefault((order_id, shipment_id), delivered_at)

    def unplaced_new_orders(self) -> set[str]:
        """Orders the batch saw shipped that have no row yet and no placement in it."""
        return {
            order_id
            for order_id, _ in self.shipments
            if order_id not in self.stored_orders and order_id not in self.placements
        }


async def load(connection: asyncpg.Connection, events: Sequence[Event]) -> OrderFactsBatch:
    rows = await connection.fetch(_LOCK_STORED_ORDERS, list({event.subject() for event in events}))
    return OrderFactsBatch(stored_orders=frozenset(row["order_id"] for row in rows))


async def save(connection: asyncpg.Connection, batch: OrderFactsBatch) -> None:
    """Writes what the batch recorded, orders first (the other tables refer to them), each
    table's rows in key order so that concurrent batches take new keys in the same order."""
    await _write_orders(connection, batch)
    if batch.lines:
        lines = sorted(batch.lines.items())
        await connection.execute(
            _WRITE_ORDER_LINES,
            [order_id for (order_id, _), _ in lines],
            [line_id for (_, line_id), _ in lines],
            [line.sku for _, line in lines],
            [line.quantity for _, line in lines],
            [line.paid.amount_minor for _, line in lines],
            [line.paid.tax_minor for _, line in lines],
        )
    if batch.shipments:
        shipments = sorted(batch.shipments.items())
        lines_shipped = [
            (order_id, shipment.shipment_id, sku, quantity)
            for (order_id, _), shipment in shipments
            for sku, quantity in sorted(shipment.quantities.items())
        ]
        await connection.execute(
            _WRITE_SHIPMENTS,
            [order_id for (order_id, _), _ in shipments],
            [shipment_id for (_, shipment_id), _ in shipments],
            [shipment.warehouse_id for _, shipment in shipments],
            [shipment.shipped_at for _, shipment in shipments],
            [order_id for order_id, _, _, _ in lines_shipped],
            [shipment_id for _, shipment_id, _, _ in lines_shipped],
            [sku for _, _, sku, _ in lines_shipped],
            [quantity for _, _, _, quantity in lines_shipped],
        )
    if batch.deliveries:
        deliveries = sorted(batch.deliveries.items())
        await connection.execute(
            _WRITE_DELIVERIES,
            [order_id for (order_id, _), _ in deliveries],
            [shipment_id for (_, shipment_id), _ in deliveries],
            [delivered_at for _, delivered_at in deliveries],
        )


async def _write_orders(connection: asyncpg.Connection, batch: OrderFactsBatch) -> None:
    """One row per order: its placement, or a bare row for an order first seen shipped."""
    order_ids = sorted(batch.placements.keys() | batch.unplaced_new_orders())
    if not order_ids:
        return
    placed = [batch.placements.get(order_id) for order_id in order_ids]
    await connection.execute(
        _WRITE_ORDERS,
        order_ids,
        [order.placement.currency if order else None for order in placed],
        [order.placement.shipping_paid.amount_minor if order else None for order in placed],
        [order.placement.shipping_paid.tax_minor if order else None for order in placed],
        [order.placement.customer_id if order else None for order in placed],
        [order.placed_at if order else None for order in placed],
    )
