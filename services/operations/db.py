"""The projection tables and the queries on them. The projections are written set-based
(`batch_state` for events, `raw_rows` for dead letters and spans): every write is an
upsert or an increment keyed by what it is about, so it can be applied in any order; the
inbox (for events) and the record's own position (dead letters) or id (spans) keep it
exactly once. Here: the dashboard's reads, its replay bookkeeping and the lag snapshot.

Every read the dashboard makes is an index range or a small aggregate table: the overview
stays fast with hundreds of thousands of orders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = MetaData()
TZ = DateTime(timezone=True)

orders = Table(
    "ops_orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("channel", String(32)),
    Column("external_order_id", String(128)),
    Column("status", String(32)),
    Column("placed_at", TZ),
    Column("entered_state_at", TZ),
    Column("stage_facts", JSONB, nullable=False),
    Column("last_event_type", String(64)),
    Column("last_event_at", TZ),
    Column("trace_id", String(32)),
)

order_events = Table(
    "ops_order_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("source", String(64), nullable=False),
    Column("occurred_at", TZ, nullable=False),
    Column("trace_id", String(32)),
    Column("summary", Text, nullable=False),
)

state_counts = Table(
    "ops_state_counts",
    metadata,
    Column("status", String(32), primary_key=True),
    Column("orders", BigInteger, nullable=False),
)

state_deltas = Table(
    "ops_state_deltas",
    metadata,
    Column("minute", TZ, primary_key=True),
    Column("status", String(32), primary_key=True),
    Column("delta", BigInteger, nullable=False),
)

topic_rates = Table(
    "ops_topic_rates",
    metadata,
    Column("second", TZ, primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("events", BigInteger, nullable=False),
)

dead_letters = Table(
    "ops_dead_letters",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dead_letter_topic", String(255), nullable=False),
    Column("dead_letter_partition", Integer, nullable=False),
    Column("dead_letter_offset", BigInteger, nullable=False),
    Column("consumer_group", String(255), nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary),
    Column("value_omitted_bytes", BigInteger),
    Column("headers", JSONB, nullable=False),
    Column("error_class", Text),
    Column("error_message", Text),
    Column("attempts", Integer),
    Column("failed_at", TZ),
    Column("source_topic", String(255)),
    Column("source_partition", Integer),
    Column("source_offset", BigInteger),
    Column("event_type", String(128)),
    Column("replayed_at", TZ),
    Column("replays", Integer, nullable=False),
)

low_stock = Table(
    "ops_low_stock",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("warehouse_id", String(64), primary_key=True),
    Column("available", BigInteger),
    Column("threshold", BigInteger),
    Column("detected_at", TZ),
    Column("restocked_at", TZ),
)

sku_stats = Table(
    "ops_sku_stats",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("ordered_units", BigInteger, nullable=False),
    Column("ordered_lines", BigInteger, nullable=False),
    Column("return_units", BigInteger, nullable=False),
    Column("return_lines", BigInteger, nullable=False),
)

return_reasons = Table(
    "ops_return_reasons",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("reason", String(64), primary_key=True),
    Column("units", BigInteger, nullable=False),
)

notification_failures = Table(
    "ops_notification_failures",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("subject_key", String(128), nullable=False),
    Column("template", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(512), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("cause_event_type", String(128), nullable=False),
    Column("occurred_at", TZ, nullable=False),
)

spans = Table(
    "ops_spans",
    metadata,
    Column("span_id", String(16), primary_key=True),
    Column("trace_id", String(32), nullable=False),
    Column("parent_span_id", String(16)),
    Column("name", Text, nullable=False),
    Column("service", String(64), nullable=False),
    Column("kind", String(32)),
    Column("start_time", TZ, nullable=False),
    Column("end_time", TZ, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("order_id", String(64)),
)

consumer_lag = Table(
    "ops_consumer_lag",
    metadata,
    Column("consumer_group", String(255), primary_key=True),
    Column("lag", BigInteger, nullable=False),
    Column("partitions", JSONB, nullable=False),
    Column("refreshed_at", TZ, nullable=False),
)

PROJECTIONS = (
    orders,
    order_events,
    state_counts,
    state_deltas,
    topic_rates,
    dead_letters,
    low_stock,
    sku_stats,
    return_reasons,
    notification_failures,
    spans,
)
"""The tables rebuilt by replaying the topics (the lag snapshot is read from Kafka)."""


# --- writes ------------------------------------------------------------------------------


async def mark_replayed(connection: AsyncConnection, letter_id: int, at: datetime) -> None:
    await connection.execute(
        dead_letters.update()
        .where(dead_letters.c.id == letter_id)
        .values(replayed_at=at, replays=dead_letters.c.replays + 1)
    )


async def replace_lag(
    connection: AsyncConnection, rows: Sequence[Mapping[str, Any]], at: datetime
) -> None:
    await connection.execute(consumer_lag.delete())
    if rows:
        await connection.execute(
            insert(consumer_lag), [{**row, "refreshed_at": at} for row in rows]
        )


# --- reads -------------------------------------------------------------------------------


async def counts_now(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(
        select(state_counts.c.status, state_counts.c.orders).where(state_counts.c.orders != 0)
    )
    return {status: int(count) for status, count in rows}


async def counts_before(connection: AsyncConnection, minute: datetime) -> dict[str, int]:
    rows = await connection.execute(
        select(state_deltas.c.status, func.sum(state_deltas.c.delta))
        .where(state_deltas.c.minute < minute)
        .group_by(state_deltas.c.status)
    )
    return {status: int(total) for status, total in rows}


async def deltas_since(
    connection: AsyncConnection, minute: datetime
) -> list[tuple[datetime, str, int]]:
    rows = await connection.execute(
        select(state_deltas.c.minute, state_deltas.c.status, state_deltas.c.delta).where(
            state_deltas.c.minute >= minute
        )
    )
    return [(row[0], row[1], int(row[2])) for row in rows]


async def rates_since(
    connection: AsyncConnection, second: datetime
) -> list[tuple[datetime, str, int]]:
    rows = await connection.execute(
        select(topic_rates.c.second, topic_rates.c.topic, topic_rates.c.events).where(
            topic_rates.c.second >= second
        )
    )
    return [(row[0], row[1], int(row[2])) for row in rows]


async def stuck_orders(
    connection: AsyncConnection, overdue_since: Mapping[str, datetime], limit: int
) -> list[RowMapping]:
    """Oldest first across the open stages: one index range per stage, merged."""
    if not overdue_since:
        return []
    parts = [
        select(
            orders.c.order_id,
            orders.c.status,
            orders.c.channel,
            orders.c.entered_state_at,
            orders.c.last_event_type,
        )
        .where(orders.c.status == status, orders.c.entered_state_at < since)
        .order_by(orders.c.entered_state_at)
        .limit(limit)
        .subquery()
        .select()
        for status, since in overdue_since.items()
    ]
    union = parts[0].union_all(*parts[1:]).subquery()
    rows = await connection.execute(select(union).order_by(union.c.entered_state_at).limit(limit))
    return list(rows.mappings())


async def stuck_count(
    connection: AsyncConnection, overdue_since: Mapping[str, datetime], cap: int
) -> int:
    """How many orders are stuck, counted up to `cap` per stage (a bounded index scan)."""
    total = 0
    for status, since in overdue_since.items():
        capped = (
            select(orders.c.order_id)
            .where(orders.c.status == status, orders.c.entered_state_at < since)
            .limit(cap)
            .subquery()
        )
        total += int(
            (await connection.execute(select(func.count()).select_from(capped))).scalar_one()
        )
    return total


async def recent_orders(
    connection: AsyncConnection, limit: int, before: datetime | None = None
) -> list[RowMapping]:
    query = select(
        orders.c.order_id,
        orders.c.status,
        orders.c.channel,
        orders.c.placed_at,
        orders.c.entered_state_at,
        orders.c.last_event_type,
        orders.c.last_event_at,
    ).where(orders.c.last_event_at.is_not(None))
    if before is not None:
        query = query.where(orders.c.last_event_at < before)
    rows = await connection.execute(query.order_by(orders.c.last_event_at.desc()).limit(limit))
    return list(rows.mappings())


async def order(connection: AsyncConnection, order_id: str) -> RowMapping | None:
    row = await connection.execute(select(orders).where(orders.c.order_id == order_id))
    return row.mappings().first()


async def timeline(connection: AsyncConnection, subjects: Sequence[str]) -> list[RowMapping]:
    rows = await connection.execute(
        select(order_events)
        .where(order_events.c.subject.in_(list(subjects)))
        .order_by(order_events.c.occurred_at, order_events.c.event_id)
        .limit(1000)
    )
    return list(rows.mappings())


async def trace_ids_of(connection: AsyncConnection, order_id: str) -> list[str]:
    rows = await connection.execute(
        select(spans.c.trace_id, func.min(spans.c.start_time).label("first"))
        .where(spans.c.order_id == order_id)
        .group_by(spans.c.trace_id)
        .order_by(text("first"))
    )
    return [row[0] for row in rows]


async def spans_of(connection: AsyncConnection, trace_id: str, limit: int) -> list[RowMapping]:
    rows = await connection.execute(
        select(spans).where(spans.c.trace_id == trace_id).order_by(spans.c.start_time).limit(limit)
    )
    return list(rows.mappings())


async def dead_letter_counts(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(
        select(dead_letters.c.consumer_group, func.count()).group_by(dead_letters.c.consumer_group)
    )
    return {group: int(count) for group, count in rows}


async def dead_letter_page(
    connection: AsyncConnection, group: str | None, limit: int, before_id: int | None
) -> list[RowMapping]:
    query = select(dead_letters)
    if group:
        query = query.where(dead_letters.c.consumer_group == group)
    if before_id is not None:
        query = query.where(dead_letters.c.id < before_id)
    rows = await connection.execute(query.order_by(dead_letters.c.id.desc()).limit(limit))
    return list(rows.mappings())


async def dead_letter(connection: AsyncConnection, letter_id: int) -> RowMapping | None:
    row = await connection.execute(select(dead_letters).where(dead_letters.c.id == letter_id))
    return row.mappings().first()


async def low_stock_open(connection: AsyncConnection, limit: int) -> list[RowMapping]:
    """Detections not followed by a restock of the same SKU in the same warehouse."""
    rows = await connection.execute(
        select(low_stock)
        .where(low_stock.c.detected_at.is_not(None))
        .where(
            low_stock.c.restocked_at.is_(None)
            | (low_stock.c.restocked_at < low_stock.c.detected_at)
        )
        .order_by(low_stock.c.available, low_stock.c.sku, low_stock.c.warehouse_id)
        .limit(limit)
    )
    return list(rows.mappings())


async def returns_by_reason(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(
        select(return_reasons.c.reason, func.sum(return_reasons.c.units))
        .group_by(return_reasons.c.reason)
        .order_by(func.sum(return_reasons.c.units).desc())
    )
    return {reason: int(units) for reason, units in rows}


async def return_rates(connection: AsyncConnection, limit: int) -> list[RowMapping]:
    rows = await connection.execute(
        select(sku_stats)
        .where(sku_stats.c.return_units > 0)
        .order_by(sku_stats.c.return_units.desc(), sku_stats.c.sku)
        .limit(limit)
    )
    return list(rows.mappings())


async def notification_failures_page(connection: AsyncConnection, limit: int) -> list[RowMapping]:
    rows = await connection.execute(
        select(notification_failures)
        .order_by(notification_failures.c.occurred_at.desc())
        .limit(limit)
    )
    return list(rows.mappings())


async def notification_failure_count(connection: AsyncConnection) -> int:
    count = await connection.execute(select(func.count()).select_from(notification_failures))
    return int(count.scalar_one())


async def lag(connection: AsyncConnection) -> list[RowMapping]:
    rows = await connection.execute(select(consumer_lag).order_by(consumer_lag.c.consumer_group))
    return list(rows.mappings())


async def snapshot(connection: AsyncConnection, table: Table) -> list[dict[str, Any]]:
    """Every row of a projection, in a stable order (for rebuild comparisons)."""
    key = [column for column in table.primary_key.columns]
    rows = await connection.execute(select(table).order_by(*key))
    return [dict(row) for row in rows.mappings()]
