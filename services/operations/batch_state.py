"""The projections as one consumed batch changes them, on the batch's asyncpg connection.

Loaded: the rows of the orders the batch's events are about, created empty when new and
locked in key order (facts of one order arrive on several topics at once, and replicas
must not deadlock). An order's next row depends on what is stored (its stage facts), so
it is read before the events are applied, and written back once.

Not loaded: the rest only adds to what is stored (counts, units, the latest of two
times) or inserts rows keyed by the event, so a batch aggregates its part per key and
the save merges it with the stored rows in the same statement, in key order. Saved: one
statement per table the batch changed, none for the others.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.base import Event, OrderEvent
from services.operations.domain import Stage

_CREATE_ORDERS = """
INSERT INTO ops_orders (order_id, stage_facts)
SELECT order_id, '{}'::jsonb FROM unnest($1::text[]) AS batch(order_id)
ORDER BY order_id
ON CONFLICT (order_id) DO NOTHING
"""
_LOCK_ORDERS = """
SELECT order_id, channel, external_order_id, status, placed_at, entered_state_at,
    stage_facts::text AS stage_facts, last_event_type, last_event_at, trace_id
FROM ops_orders
WHERE order_id = ANY($1::text[])
ORDER BY order_id
FOR UPDATE
"""
_UPDATE_ORDERS = """
UPDATE ops_orders AS stored
SET channel = batch.channel,
    external_order_id = batch.external_order_id,
    status = batch.status,
    placed_at = batch.placed_at,
    entered_state_at = batch.entered_state_at,
    stage_facts = batch.stage_facts::jsonb,
    last_event_type = batch.last_event_type,
    last_event_at = batch.last_event_at,
    trace_id = batch.trace_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
        $6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[], $10::text[])
    AS batch(order_id, channel, external_order_id, status, placed_at, entered_state_at,
        stage_facts, last_event_type, last_event_at, trace_id)
WHERE stored.order_id = batch.order_id
"""
_ADD_TIMELINE = """
INSERT INTO ops_order_events
    (event_id, subject, event_type, topic, source, occurred_at, trace_id, summary)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
    $6::timestamptz[], $7::text[], $8::text[])
ON CONFLICT (event_id) DO NOTHING
"""
_ADD_TOPIC_RATES = """
INSERT INTO ops_topic_rates AS stored (second, topic, events)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[]) AS batch(second, topic, events)
ORDER BY second, topic
ON CONFLICT (second, topic) DO UPDATE SET events = stored.events + excluded.events
"""
_ADD_STATE_COUNTS = """
INSERT INTO ops_state_counts AS stored (status, orders)
SELECT * FROM unnest($1::text[], $2::bigint[]) AS batch(status, orders)
ORDER BY status
ON CONFLICT (status) DO UPDATE SET orders = stored.orders + excluded.orders
"""
_ADD_STATE_DELTAS = """
INSERT INTO ops_state_deltas AS stored (minute, status, delta)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[]) AS batch(minute, status, delta)
ORDER BY minute, status
ON CONFLICT (minute, status) DO UPDATE SET delta = stored.delta + excluded.delta
"""
_ADD_SKU_UNITS = """
INSERT INTO ops_sku_stats AS stored
    (sku, ordered_units, ordered_lines, return_units, return_lines)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
    AS batch(sku, ordered_units, ordered_lines, return_units, return_lines)
ORDER BY sku
ON CONFLICT (sku) DO UPDATE SET
    ordered_units = stored.ordered_units + excluded.ordered_units,
    ordered_lines = stored.ordered_lines + excluded.ordered_lines,
    return_units = stored.return_units + excluded.return_units,
    return_lines = stored.return_lines + excluded.return_lines
"""
_ADD_RETURN_REASONS = """
INSERT INTO ops_return_reasons AS stored (sku, reason, units)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS batch(sku, reason, units)
ORDER BY sku, reason
ON CONFLICT (sku, reason) DO UPDATE SET units = stored.units + excluded.units
"""
# The latest detection wins (a tie keeps the stored one), and so does the latest restock;
# a batch without a detection (NULL) leaves the stored one as it is.
_MERGE_STOCK_ALERTS = """
INSERT INTO ops_low_stock AS stored
    (sku, warehouse_id, available, threshold, detected_at, restocked_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[],
    $6::timestamptz[]) AS batch(sku, warehouse_id, available, threshold, detected_at, restocked_at)
ORDER BY sku, warehouse_id
ON CONFLICT (sku, warehouse_id) DO UPDATE SET
    available = CASE WHEN excluded.detected_at > coalesce(stored.detected_at, '-infinity')
        THEN excluded.available ELSE stored.available END,
    threshold = CASE WHEN excluded.detected_at > coalesce(stored.detected_at, '-infinity')
        THEN excluded.threshold ELSE stored.threshold END,
    detected_at = greatest(stored.detected_at, excluded.detected_at),
    restocked_at = greatest(stored.restocked_at, excluded.restocked_at)
"""
_ADD_NOTIFICATION_FAILURES = """
INSERT INTO ops_notification_failures (event_id, subject_key, template, channel, recipient,
    error, attempts, cause_event_type, occurred_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::int[], $8::text[], $9::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
"""


@dataclass(slots=True)
class OrderRow:
    """An order's row in the funnel projection, as loaded and changed by the batch."""

    order_id: str
    channel: str | None
    external_order_id: str | None
    status: str | None
    placed_at: datetime | None
    entered_state_at: datetime | None
    stage_facts: dict[Stage, datetime]
    last_event_type: str | None
    last_event_at: datetime | None
    trace_id: str | None


@dataclass(slots=True)
class TimelineEntry:
    event_id: UUID
    subject: str
    event_type: str
    topic: str
    source: str
    occurred_at: datetime
    trace_id: str | None
    summary: str


@dataclass(slots=True)
class SkuUnits:
    """What the batch adds to one SKU's ordered and returned units and lines."""

    ordered_units: int = 0
    ordered_lines: int = 0
    return_units: int = 0
    return_lines: int = 0

    def ordered(self, units: int) -> None:
        self.ordered_units += units
        self.ordered_lines += 1

    def returned(self, units: int) -> None:
        self.return_units += units
        self.return_lines += 1


@dataclass(slots=True)
class StockAlert:
    """What the batch learnt of one SKU in one warehouse: its latest low-stock detection and
    its latest restock. The save merges them with the stored row by the same rule."""

    available: int | None = None
    threshold: int | None = None
    detected_at: datetime | None = None
    restocked_at: datetime | None = None

    def detected(self, *, available: int, threshold: int, at: datetime) -> None:
        if self.detected_at is None or at > self.detected_at:
            self.available, self.threshold, self.detected_at = available, threshold, at

    def restocked(self, at: datetime) -> None:
        if self.restocked_at is None or at > self.restocked_at:
            self.restocked_at = at


@dataclass(slots=True)
class NotificationFailure:
    event_id: UUID
    subject_key: str
    template: str
    channel: str
    recipient: str
    error: str
    attempts: int
    cause_event_type: str
    occurred_at: datetime


@dataclass(slots=True)
class Projections:
    """A batch's state: the loaded orders (those it changed named in `changed_orders`), and
    per other projection what the batch adds to it, per key."""

    orders: dict[str, OrderRow]
    changed_orders: set[str] = field(default_factory=set)
    timeline: list[TimelineEntry] = field(default_factory=list)
    topic_rates: Counter[tuple[datetime, str]] = field(default_factory=Counter)
    """Events per (second, topic)."""
    state_counts: Counter[Stage] = field(default_factory=Counter)
    state_deltas: Counter[tuple[datetime, Stage]] = field(default_factory=Counter)
    """Per (minute, stage): the change in orders at the end of that minute."""
    skus: dict[str, SkuUnits] = field(default_factory=dict)
    return_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Units returned per (sku, reason)."""
    stock_alerts: dict[tuple[str, str], StockAlert] = field(default_factory=dict)
    """Per (sku, warehouse)."""
    notification_failures: list[NotificationFailure] = field(default_factory=list)

    def sku(self, sku: str) -> SkuUnits:
        return self.skus.setdefault(sku, SkuUnits())

    def stock_alert(self, sku: str, warehouse_id: str) -> StockAlert:
        return self.stock_alerts.setdefault((sku, warehouse_id), StockAlert())


async def load(connection: asyncpg.Connection, events: Sequence[Event]) -> Projections:
    """The rows of the orders the events are about, each created empty when this is the
    first fact about it, locked until the batch commits."""
    order_ids = sorted({event.order_id for event in events if isinstance(event, OrderEvent)})
    if not order_ids:
        return Projections(orders={})
    await connection.execute(_CREATE_ORDERS, order_ids)
    rows = await connection.fetch(_LOCK_ORDERS, order_ids)
    return Projections(orders={row["order_id"]: _order_row(row) for row in rows})


async def save(connection: asyncpg.Connection, projections: Projections) -> None:
    orders = [projections.orders[order_id] for order_id in projections.changed_orders]
    await _write(
        connection,
        _UPDATE_ORDERS,
        [
            (
                order.order_id,
                order.channel,
                order.external_order_id,
                order.status,
                order.placed_at,
                order.entered_state_at,
                json.dumps(
                    {stage.value: at.isoformat() for stage, at in order.stage_facts.items()}
                ),
                order.last_event_type,
                order.last_event_at,
                order.trace_id,
            )
            for order in orders
        ],
    )
    await _write(
        connection,
        _ADD_TIMELINE,
        [
            (
                entry.event_id,
                entry.subject,
                entry.event_type,
                entry.topic,
                entry.source,
                entry.occurred_at,
                entry.trace_id,
                entry.summary,
            )
            for entry in projections.timeline
        ],
    )
    await _write(
        connection,
        _ADD_TOPIC_RATES,
        [(second, topic, events) for (second, topic), events in projections.topic_rates.items()],
    )
    # A count that went up and down again within the batch changes nothing.
    await _write(
        connection,
        _ADD_STATE_COUNTS,
        [(stage.value, by) for stage, by in projections.state_counts.items() if by],
    )
    await _write(
        connection,
        _ADD_STATE_DELTAS,
        [
            (minute, stage.value, delta)
            for (minute, stage), delta in projections.state_deltas.items()
            if delta
        ],
    )
    await _write(
        connection,
        _ADD_SKU_UNITS,
        [
            (sku, units.ordered_units, units.ordered_lines, units.return_units, units.return_lines)
            for sku, units in projections.skus.items()
        ],
    )
    await _write(
        connection,
        _ADD_RETURN_REASONS,
        [(sku, reason, units) for (sku, reason), units in projections.return_reasons.items()],
    )
    await _write(
        connection,
        _MERGE_STOCK_ALERTS,
        [
            (
                sku,
                warehouse_id,
                alert.available,
                alert.threshold,
                alert.detected_at,
                alert.restocked_at,
            )
            for (sku, warehouse_id), alert in projections.stock_alerts.items()
        ],
    )
    await _write(
        connection,
        _ADD_NOTIFICATION_FAILURES,
        [
            (
                failure.event_id,
                failure.subject_key,
                failure.template,
                failure.channel,
                failure.recipient,
                failure.error,
                failure.attempts,
                failure.cause_event_type,
                failure.occurred_at,
            )
            for failure in projections.notification_failures
        ],
    )


async def _write(
    connection: asyncpg.Connection, statement: str, rows: Sequence[tuple[object, ...]]
) -> None:
    """One statement for all the rows, their columns passed as arrays (for `unnest`)."""
    if rows:
        await connection.execute(statement, *zip(*rows, strict=True))


def _order_row(row: asyncpg.Record) -> OrderRow:
    facts: dict[str, str] = json.loads(row["stage_facts"])
    return OrderRow(
        order_id=row["order_id"],
        channel=row["channel"],
        external_order_id=row["external_order_id"],
        status=row["status"],
        placed_at=row["placed_at"],
        entered_state_at=row["entered_state_at"],
        stage_facts={Stage(name): datetime.fromisoformat(at) for name, at in facts.items()},
        last_event_type=row["last_event_type"],
        last_event_at=row["last_event_at"],
        trace_id=row["trace_id"],
    )
