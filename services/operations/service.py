"""The operations view's use cases: projecting each consumed event, dead letter and span,
reading the dashboard's views, and replaying a dead letter."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.base import Event, OrderEvent
from contracts.catalogue import TOPICS, topic_of
from contracts.events.channel import OrderSubmitted
from contracts.events.fulfilment import Delivered, ShipmentCreated, Shipped
from contracts.events.inventory import (
    LowStockDetected,
    StockReservationFailed,
    StockReserved,
    StockRestocked,
)
from contracts.events.notification import (
    NotificationFailed,
    NotificationOutcome,
    NotificationSkipped,
)
from contracts.events.order import (
    OrderCancelled,
    OrderCompleted,
    OrderPlaced,
    OrderRejected,
)
from contracts.events.returns import RefundIssued, ReturnRequested
from services.kit import dead_letters as dlq
from services.kit.kafka import ResilientProducer
from services.kit.logs import get_logger
from services.operations import db, domain
from services.operations.batch_state import (
    NotificationFailure,
    OrderRow,
    Projections,
    TimelineEntry,
)
from services.operations.domain import Stage, StuckThresholds
from services.operations.raw_rows import DeadLetterRow, SpanRow

log = get_logger(__name__)

PRODUCER_OF_TOPIC = {topic.name: topic.producer for topic in TOPICS}
ORDER_ID_ATTRIBUTE = "oms.order_id"


# --- projecting events -------------------------------------------------------------------
# Each function applies one consumed event to the batch's projections, in memory: the
# batch is loaded before and saved after (`batch_state`). `trace_id` is the trace the
# event's record belongs to.


def project(projections: Projections, event: Event, trace_id: str | None) -> None:
    """Every event: its line in its subject's timeline, its count in its topic's events per
    second and, for an event about an order, the order's last activity and its place in the
    funnel."""
    topic = topic_of(type(event))
    projections.topic_rates[(domain.second_of(event.occurred_at), topic)] += 1
    projections.timeline.append(
        TimelineEntry(
            event_id=event.event_id,
            subject=event.subject(),
            event_type=type(event).__name__,
            topic=topic,
            source=PRODUCER_OF_TOPIC.get(topic, "unknown"),
            occurred_at=event.occurred_at,
            trace_id=trace_id,
            summary=summarize(event),
        )
    )
    if isinstance(event, OrderEvent):
        _follow_order(projections, event)


def project_order_placed(
    projections: Projections, event: OrderPlaced, trace_id: str | None
) -> None:
    """Also where the order came from, when it was placed, its trace, and the units ordered
    per SKU."""
    project(projections, event, trace_id)
    order = _from_channel(projections, event, trace_id)
    order.placed_at = event.placed_at
    for line in event.lines:
        projections.sku(line.sku).ordered(line.quantity)


def project_order_rejected(
    projections: Projections, event: OrderRejected, trace_id: str | None
) -> None:
    """Also where the order came from and its trace."""
    project(projections, event, trace_id)
    _from_channel(projections, event, trace_id)


def project_return_requested(
    projections: Projections, event: ReturnRequested, trace_id: str | None
) -> None:
    """Also the units returned per SKU, and per SKU and reason."""
    project(projections, event, trace_id)
    for line in event.lines:
        projections.sku(line.sku).returned(line.quantity)
        projections.return_reasons[(line.sku, line.reason_code.value)] += line.quantity


def project_low_stock(
    projections: Projections, event: LowStockDetected, trace_id: str | None
) -> None:
    """Also the SKU's low stock in the warehouse: the latest detection wins, whichever
    arrives first."""
    project(projections, event, trace_id)
    projections.stock_alert(event.sku, event.warehouse_id).detected(
        available=event.available, threshold=event.threshold, at=event.occurred_at
    )


def project_restock(projections: Projections, event: StockRestocked, trace_id: str | None) -> None:
    """Also each restocked SKU's latest restock in the warehouse (a restock after the
    latest detection closes it)."""
    project(projections, event, trace_id)
    for line in event.lines:
        projections.stock_alert(line.sku, event.warehouse_id).restocked(event.occurred_at)


def project_notification_failure(
    projections: Projections, event: NotificationFailed, trace_id: str | None
) -> None:
    """Also the failure in the list of notifications not sent."""
    project(projections, event, trace_id)
    projections.notification_failures.append(
        NotificationFailure(
            event_id=event.event_id,
            subject_key=event.subject_key,
            template=event.template,
            channel=event.channel.value,
            recipient=event.recipient,
            error=event.error,
            attempts=event.attempts,
            cause_event_type=event.cause_event_type,
            occurred_at=event.occurred_at,
        )
    )


def _follow_order(projections: Projections, event: OrderEvent) -> None:
    order = projections.orders[event.order_id]
    changed = False
    if order.last_event_at is None or event.occurred_at >= order.last_event_at:
        order.last_event_at = event.occurred_at
        order.last_event_type = type(event).__name__
        changed = True
    stage = domain.STAGE_OF_EVENT.get(type(event).__name__)
    if stage is not None:
        before = order.stage_facts
        after = domain.with_fact(before, stage, event.occurred_at)
        if after != before:
            _move(projections, before, after)
            now_at = domain.current(after)
            assert now_at is not None
            order.status = now_at[0].value
            order.entered_state_at = now_at[1]
            order.stage_facts = after
            changed = True
    if changed:
        projections.changed_orders.add(order.order_id)


def _from_channel(
    projections: Projections, event: OrderPlaced | OrderRejected, trace_id: str | None
) -> OrderRow:
    """The order's channel and external id; its trace is the first one seen entering it."""
    order = projections.orders[event.order_id]
    order.channel = event.channel
    order.external_order_id = event.external_order_id
    if trace_id and order.trace_id is None:
        order.trace_id = trace_id
    projections.changed_orders.add(order.order_id)
    return order


def _move(projections: Projections, before: domain.Facts, after: domain.Facts) -> None:
    was, now = domain.current(before), domain.current(after)
    if was is None or now is None or was[0] != now[0]:
        if was is not None:
            projections.state_counts[was[0]] -= 1
        if now is not None:
            projections.state_counts[now[0]] += 1
    projections.state_deltas.update(domain.delta_change(before, after))


def summarize(event: Event) -> str:
    """A line a person reads in the order's timeline."""
    if isinstance(event, OrderSubmitted):
        return f"{event.channel} order {event.external_order_id}, {len(event.lines)} line(s)"
    if isinstance(event, OrderPlaced):
        total = event.total
        return f"{len(event.lines)} line(s), total {total}"
    if isinstance(event, OrderRejected):
        return "; ".join(reason.code.value for reason in event.reasons)
    if isinstance(event, OrderCancelled):
        return f"{event.reason.value} by {event.cancelled_by}"
    if isinstance(event, OrderCompleted):
        return event.final_status.value
    if isinstance(event, StockReserved):
        warehouses = sorted({allocation.warehouse_id for allocation in event.allocations})
        return f"reserved in {', '.join(warehouses)}"
    if isinstance(event, StockReservationFailed):
        return "short: " + ", ".join(shortage.sku for shortage in event.shortages)
    if isinstance(event, ShipmentCreated):
        return f"{event.shipment_id} from {event.warehouse_id} with {event.carrier}"
    if isinstance(event, Shipped):
        return f"{event.shipment_id} tracking {event.tracking_number}"
    if isinstance(event, Delivered):
        return f"{event.shipment_id} delivered"
    if isinstance(event, ReturnRequested):
        return ", ".join(
            f"{line.quantity} x {line.sku} ({line.reason_code.value})" for line in event.lines
        )
    if isinstance(event, RefundIssued):
        return str(event.amount)
    if isinstance(event, LowStockDetected):
        return f"{event.sku} in {event.warehouse_id}: {event.available} ≤ {event.threshold}"
    if isinstance(event, NotificationFailed):
        return f"{event.template} to {event.recipient} failed: {event.error}"
    if isinstance(event, NotificationOutcome):
        return f"{event.template} via {event.channel.value}"
    if isinstance(event, NotificationSkipped):
        return f"{event.template} not sent: {event.reason.value}"
    return ""


# --- dead letters ------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


def dead_letter_row(record: RawRecord, consumer_group: str) -> DeadLetterRow:
    headers = {name: raw.decode("utf-8", "replace") for name, raw in record.headers}
    return DeadLetterRow(
        dead_letter_topic=record.topic,
        dead_letter_partition=record.partition,
        dead_letter_offset=record.offset,
        consumer_group=headers.get(dlq.CONSUMER_GROUP, consumer_group),
        key=record.key,
        value=record.value,
        value_omitted_bytes=_int(headers.get(dlq.VALUE_OMITTED)),
        headers=[(name, raw.decode("utf-8", "backslashreplace")) for name, raw in record.headers],
        error_class=headers.get(dlq.ERROR_CLASS),
        error_message=headers.get(dlq.ERROR_MESSAGE),
        attempts=_int(headers.get(dlq.ATTEMPTS)),
        failed_at=_time(headers.get(dlq.FAILED_AT)),
        source_topic=headers.get(dlq.SOURCE_TOPIC),
        source_partition=_int(headers.get(dlq.SOURCE_PARTITION)),
        source_offset=_int(headers.get(dlq.SOURCE_OFFSET)),
        event_type=headers.get("ce_type"),
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class ReplayRefused(Exception):
    """The dead letter cannot be replayed (unknown, or its original is gone)."""


FetchOriginal = Callable[[str, int, int], Awaitable[bytes | None]]


async def replay_dead_letter(
    connection: AsyncConnection,
    producer: ResilientProducer,
    letter_id: int,
    fetch_original: FetchOriginal,
) -> tuple[str, int, int]:
    """Publishes the original record back to its source topic and partition, with the
    record's own headers (no `dlq_*`); returns where it landed. The consumers' inboxes make
    a second replay of the same event harmless."""
    letter = await db.dead_letter(connection, letter_id)
    if letter is None:
        raise ReplayRefused(f"no dead letter {letter_id}")
    topic, partition = letter["source_topic"], letter["source_partition"]
    if topic is None or partition is None:
        raise ReplayRefused("the dead letter names no source topic")
    value: bytes | None = letter["value"]
    if value is None and letter["value_omitted_bytes"] is not None:
        if letter["source_offset"] is None:
            raise ReplayRefused("the value was omitted and the source offset is unknown")
        value = await fetch_original(topic, partition, letter["source_offset"])
        if value is None:
            raise ReplayRefused(
                f"the value was too large to copy and the original is gone from {topic} "
                f"partition {partition} offset {letter['source_offset']}"
            )
    headers = dlq.original_headers([(name, text.encode()) for name, text in letter["headers"]])
    metadata = await producer.current.send_and_wait(
        topic, value=value, key=letter["key"], partition=partition, headers=headers
    )
    await db.mark_replayed(connection, letter_id, datetime.now(UTC))
    log.info("dead letter replayed", letter=letter_id, topic=topic, offset=metadata.offset)
    return topic, int(metadata.partition), int(metadata.offset)


# --- spans -------------------------------------------------------------------------------


class InvalidSpan(ValueError):
    pass


def span_document(value: bytes | None) -> dict[str, Any]:
    """A span as the collection topic carries it, read but not yet checked: enough to see
    which service it is from."""
    try:
        span = json.loads(value or b"")
    except ValueError as error:
        raise InvalidSpan(f"not JSON: {error}") from None
    if not isinstance(span, dict):
        raise InvalidSpan("not a JSON object")
    return span


def span_row(span: Mapping[str, Any]) -> SpanRow:
    """A span's row, its document checked field by field."""
    trace_id, span_id = span.get("trace_id"), span.get("span_id")
    if not _hex(trace_id, 32) or not _hex(span_id, 16):
        raise InvalidSpan("trace_id must be 32 and span_id 16 hex digits")
    parent = span.get("parent_span_id")
    if parent is not None and not _hex(parent, 16):
        raise InvalidSpan("parent_span_id must be 16 hex digits or null")
    attributes = span.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise InvalidSpan("attributes must be an object")
    try:
        start = datetime.fromisoformat(str(span["start_time"]))
        end = datetime.fromisoformat(str(span["end_time"]))
    except (KeyError, ValueError):
        raise InvalidSpan("start_time and end_time must be ISO 8601 times") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidSpan("span times must carry their UTC offset")
    order_id = attributes.get(ORDER_ID_ATTRIBUTE)
    return SpanRow(
        span_id=span_id,
        trace_id=trace_id,
        parent_span_id=parent,
        name=str(span.get("name", ""))[:500],
        service=span_service(span),
        kind=str(span.get("kind", ""))[:32],
        start_time=start,
        end_time=max(end, start),
        status="error" if span.get("status") == "error" else "ok",
        attributes={str(name): str(text) for name, text in attributes.items()},
        order_id=str(order_id)[:64] if order_id else None,
    )


def span_service(span: Mapping[str, Any]) -> str:
    return str(span.get("service", "unknown"))[:64]


def _hex(text: object, length: int) -> TypeGuard[str]:
    if not isinstance(text, str) or len(text) != length:
        return False
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


# --- views -------------------------------------------------------------------------------

FUNNEL_MINUTES = 60
RATE_SECONDS = 120
PAGE = 50
STUCK_COUNT_CAP = 1_000
"""Stuck orders are counted up to this many per state ("1000+"): a bounded index scan."""


@dataclass
class Overview:
    now: datetime
    counts: dict[str, int]
    stuck: list[RowMapping]
    stuck_total: int
    recent: list[RowMapping]
    dead_letters: dict[str, int]
    lag: list[RowMapping]
    low_stock: list[RowMapping]
    returns_by_reason: dict[str, int]
    return_rates: list[RowMapping]
    notification_failures: list[RowMapping]
    notification_failure_count: int
    thresholds: dict[str, timedelta] = field(default_factory=dict)


async def overview(
    connection: AsyncConnection, thresholds: StuckThresholds, now: datetime
) -> Overview:
    overdue = {stage.value: since for stage, since in thresholds.overdue_since(now).items()}
    return Overview(
        now=now,
        counts=await db.counts_now(connection),
        stuck=await db.stuck_orders(connection, overdue, PAGE),
        stuck_total=await db.stuck_count(connection, overdue, STUCK_COUNT_CAP),
        recent=await db.recent_orders(connection, 20),
        dead_letters=await db.dead_letter_counts(connection),
        lag=await db.lag(connection),
        low_stock=await db.low_stock_open(connection, PAGE),
        returns_by_reason=await db.returns_by_reason(connection),
        return_rates=await db.return_rates(connection, 15),
        notification_failures=await db.notification_failures_page(connection, 20),
        notification_failure_count=await db.notification_failure_count(connection),
        thresholds={stage.value: limit for stage, limit in thresholds.limits.items()},
    )


async def charts(connection: AsyncConnection, now: datetime) -> dict[str, Any]:
    """The chart data: orders per state per minute, and events per second per topic."""
    minutes = domain.minutes_ending(now, FUNNEL_MINUTES)
    baseline = {
        Stage(status): count
        for status, count in (await db.counts_before(connection, minutes[0])).items()
    }
    deltas = [
        (minute, Stage(status), delta)
        for minute, status, delta in await db.deltas_since(connection, minutes[0])
    ]
    series = domain.count_series(deltas, baseline, minutes)
    first_second = domain.second_of(now) - timedelta(seconds=RATE_SECONDS - 1)
    seconds = [first_second + timedelta(seconds=index) for index in range(RATE_SECONDS)]
    rates: dict[str, dict[datetime, int]] = {}
    for second, topic, events in await db.rates_since(connection, first_second):
        rates.setdefault(topic, {})[second] = events
    return {
        "funnel": {
            "labels": [minute.strftime("%H:%M") for minute in minutes],
            "series": {stage.value: values for stage, values in series.items()},
        },
        "rates": {
            "labels": [second.strftime("%H:%M:%S") for second in seconds],
            "series": {
                topic: [per_second.get(second, 0) for second in seconds]
                for topic, per_second in sorted(rates.items())
            },
        },
    }


@dataclass
class OrderPage:
    order: RowMapping | None
    timeline: list[RowMapping]
    trace_id: str | None
    trace_ids: list[str]
    waterfall: list[domain.SpanBar]
    trace_started: datetime | None
    trace_millis: float


MAX_SPANS = 500


async def order_page(connection: AsyncConnection, order_id: str) -> OrderPage:
    order = await db.order(connection, order_id)
    subjects = [order_id]
    if order is not None and order["channel"] and order["external_order_id"]:
        subjects.append(f"{order['channel']}:{order['external_order_id']}")
    timeline = await db.timeline(connection, subjects)
    trace_ids = await db.trace_ids_of(connection, order_id)
    for candidate in (order["trace_id"] if order else None, *(row["trace_id"] for row in timeline)):
        if candidate and candidate not in trace_ids:
            trace_ids.append(candidate)
    trace_id = trace_ids[0] if trace_ids else None
    spans = await db.spans_of(connection, trace_id, MAX_SPANS) if trace_id else []
    timings = [
        domain.SpanTiming(
            span_id=span["span_id"],
            parent_span_id=span["parent_span_id"],
            name=span["name"],
            service=span["service"],
            status=span["status"],
            start=span["start_time"],
            end=span["end_time"],
        )
        for span in spans
    ]
    started = min((span.start for span in timings), default=None)
    finished = max((span.end for span in timings), default=None)
    millis = (finished - started).total_seconds() * 1000 if started and finished else 0.0
    return OrderPage(
        order=order,
        timeline=timeline,
        trace_id=trace_id,
        trace_ids=trace_ids,
        waterfall=domain.waterfall(timings),
        trace_started=started,
        trace_millis=round(millis, 3),
    )
