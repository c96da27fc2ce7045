"""The operations view's projections consumed a batch at a time, on the real PostgreSQL:
batches go through the kit's pipeline exactly as the consumer hands them over (records
already read from Kafka), and the raw-record job stores a fetched batch of dead letters
and spans as it would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.base import Event
from contracts.events.common import SkuQuantity
from contracts.events.inventory import LowStockDetected, StockRestocked
from contracts.events.notification import NotificationChannel, NotificationFailed
from contracts.events.order import (
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderRejectionCode,
    OrderRejectionReason,
)
from contracts.events.returns import ReturnReasonCode, ReturnRequested, ReturnRequestLine
from contracts.wire import encode
from services.kit import migrations
from services.kit.dead_letters import ConsumedRecord, DeadLetterPublisher
from services.kit.emitted import Cause
from services.kit.kafka import ResilientProducer
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline, Outcome
from services.kit.topics import TopicNames
from services.kit.unit_of_work import UnitOfWork
from services.operations import batch_state, db, handlers, jobs
from services.operations.app import MIGRATIONS
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually
from tests.kit.harness import started_producer
from tests.notification import samples

pytestmark = pytest.mark.integration

SOURCE = "/oms/operations"
WAREHOUSE = "wh-paris-1"
# Mid-minute, so the few seconds the events span stay in one minute.
T0 = datetime.now(UTC).replace(second=20, microsecond=0) - timedelta(minutes=5)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Scene:
    engine: AsyncEngine
    dsn: str
    pipeline: EventPipeline
    statements: list[str]
    """Every statement the pipeline's connections ran, in order."""

    async def apply(self, *events: Event) -> list[Outcome]:
        """The events as one consumed batch, in the order given."""
        return await self.pipeline.process_batch(
            [consumed(event, offset) for offset, event in enumerate(events)]
        )

    async def projections(self) -> dict[str, list[dict[str, Any]]]:
        async with self.engine.connect() as connection:
            tables = {table.name: await db.snapshot(connection, table) for table in db.PROJECTIONS}
        # A count that went up and down again leaves a zero row or none, by batch.
        tables["ops_state_counts"] = [row for row in tables["ops_state_counts"] if row["orders"]]
        tables["ops_state_deltas"] = [row for row in tables["ops_state_deltas"] if row["delta"]]
        return tables

    async def rows(self, table: str) -> list[dict[str, Any]]:
        return (await self.projections())[table]


def consumed(event: Event, offset: int, traceparent: str | None = None) -> ConsumedRecord:
    """The event's record; unless told otherwise, in a trace named after the event (so that
    two runs of the same events record the same traces)."""
    record = encode(event, source="/test")
    traceparent = traceparent or f"00-{event.event_id.hex}-{event.event_id.hex[:16]}-01"
    headers = [*record.headers, ("traceparent", traceparent.encode())]
    return ConsumedRecord(
        topic=TopicNames().of_event(type(event)),
        partition=0,
        offset=offset,
        key=record.key,
        value=record.value,
        headers=headers,
    )


SceneFactory = Callable[[], Awaitable[Scene]]


@pytest.fixture
async def new_scene(infrastructure: Infrastructure) -> AsyncIterator[SceneFactory]:
    """Each scene an empty database of its own: the projections' counts are global."""
    async with contextlib.AsyncExitStack() as stack:
        producer = await stack.enter_async_context(
            started_producer(infrastructure.kafka_bootstrap_servers)
        )

        async def make() -> Scene:
            database_url = await infrastructure.create_database("operations_batches")
            await asyncio.to_thread(migrations.upgrade, database_url, MIGRATIONS)
            engine = create_async_engine(database_url)
            stack.push_async_callback(engine.dispose)
            dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
            statements: list[str] = []
            return Scene(engine, dsn, pipeline_on(engine, dsn, producer, statements), statements)

        yield make


def pipeline_on(
    engine: AsyncEngine, dsn: str, producer: ResilientProducer, statements: list[str]
) -> EventPipeline:
    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[asyncpg.Connection]:
        connection = await asyncpg.connect(dsn)
        connection.add_query_logger(lambda logged: statements.append(logged.query))
        try:
            yield connection
        finally:
            await connection.close()

    def unit_of_work(cause: Cause | None) -> UnitOfWork:
        return UnitOfWork(engine, source=SOURCE, cause=cause)

    return EventPipeline(
        service="operations",
        connect=connect,
        router=handlers.router(),
        source=SOURCE,
        unit_of_work=unit_of_work,
        dead_letters=DeadLetterPublisher(producer, f"operations-{uuid.uuid4().hex[:8]}"),
        metrics=Metrics(),
        tracer=TracerProvider().get_tracer("test"),
    )


@pytest.fixture
async def scene(new_scene: SceneFactory) -> Scene:
    return await new_scene()


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


def placed(order_id: str, seconds: float) -> OrderPlaced:
    """Two MUG-01 and one TEA-02."""
    return samples.order_placed(order_id).model_copy(update={"occurred_at": at(seconds)})


def confirmed(order_id: str, seconds: float) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, reservation_id="res-1", occurred_at=at(seconds))


def rejected(order_id: str, seconds: float) -> OrderRejected:
    return OrderRejected(
        order_id=order_id,
        channel="webshop",
        external_order_id=f"WS-{order_id}",
        reasons=(OrderRejectionReason(code=OrderRejectionCode.UNKNOWN_SKU, message="no such"),),
        occurred_at=at(seconds),
    )


def return_requested(order_id: str, seconds: float, *lines: tuple[str, int]) -> ReturnRequested:
    return ReturnRequested(
        order_id=order_id,
        return_id=f"rma-{uuid.uuid4().hex[:6]}",
        lines=tuple(
            ReturnRequestLine(sku=sku, quantity=quantity, reason_code=ReturnReasonCode.DAMAGED)
            for sku, quantity in lines
        ),
        requested_at=at(seconds),
        occurred_at=at(seconds),
    )


def low_stock(sku: str, available: int, seconds: float) -> LowStockDetected:
    return LowStockDetected(
        sku=sku, warehouse_id=WAREHOUSE, available=available, threshold=5, occurred_at=at(seconds)
    )


def restocked(order_id: str, seconds: float, *skus: str) -> StockRestocked:
    return StockRestocked(
        order_id=order_id,
        return_id="rma-1",
        warehouse_id=WAREHOUSE,
        lines=tuple(SkuQuantity(sku=sku, quantity=1) for sku in skus),
        occurred_at=at(seconds),
    )


def notification_failed(order_id: str, seconds: float) -> NotificationFailed:
    return NotificationFailed(
        subject_key=order_id,
        notification_id=f"ntf-{uuid.uuid4().hex[:6]}",
        cause_event_id=uuid.uuid4(),
        cause_event_type=OrderPlaced.event_type(),
        channel=NotificationChannel.EMAIL,
        recipient="ada@example.com",
        template="order_placed",
        attempts=5,
        error="550 mailbox unavailable",
        occurred_at=at(seconds),
    )


def every_projection(first: str, second: str, third: str) -> list[Event]:
    """Events feeding every projection, with keys repeated: two orders placed in the same
    second with the same SKUs, facts of one order before those it follows, the same SKU
    and reason returned twice, a detection older than one already seen."""
    return [
        confirmed(first, 1),
        placed(first, 0),
        placed(second, 0),
        rejected(third, 0),
        samples.shipped(first).model_copy(update={"occurred_at": at(3)}),
        samples.delivered(first).model_copy(update={"occurred_at": at(4)}),
        return_requested(first, 5, ("MUG-01", 1)),
        return_requested(first, 5, ("MUG-01", 1), ("TEA-02", 1)),
        # Older than the order's last fact and its first confirmation: the stage's start
        # moves back, its last activity does not.
        confirmed(first, 0.5),
        samples.order_cancelled(second).model_copy(update={"occurred_at": at(2)}),
        low_stock("MUG-01", 2, 6),
        low_stock("MUG-01", 4, 5),
        low_stock("TEA-02", 1, 1),
        restocked(first, 3, "TEA-02", "LAMP-03"),
        notification_failed(first, 2),
    ]


async def test_an_order_twice_in_a_batch_moves_on_from_its_own_first_fact(scene: Scene) -> None:
    order_id = new_order_id()
    placement = placed(order_id, 0)
    batch = [placement, confirmed(order_id, 1), placement]

    assert await scene.apply(*batch) == [Outcome.HANDLED, Outcome.HANDLED, Outcome.DUPLICATE]

    [order] = await scene.rows("ops_orders")
    assert (order["order_id"], order["status"], order["entered_state_at"]) == (
        order_id,
        "confirmed",
        at(1),
    )
    assert order["stage_facts"] == {"placed": at(0).isoformat(), "confirmed": at(1).isoformat()}
    assert (order["last_event_type"], order["channel"]) == ("OrderConfirmed", "webshop")
    assert [(row["status"], row["orders"]) for row in await scene.rows("ops_state_counts")] == [
        ("confirmed", 1)
    ]
    assert [row["event_type"] for row in await scene.rows("ops_order_events")] == [
        "OrderPlaced",
        "OrderConfirmed",
    ]
    [mug, tea] = await scene.rows("ops_sku_stats")
    assert (mug["sku"], mug["ordered_units"], mug["ordered_lines"]) == ("MUG-01", 2, 1)
    assert (tea["sku"], tea["ordered_units"], tea["ordered_lines"]) == ("TEA-02", 1, 1)


async def test_a_batch_makes_the_projections_its_events_make_one_at_a_time(
    new_scene: SceneFactory,
) -> None:
    together, one_at_a_time = await new_scene(), await new_scene()
    events = every_projection(new_order_id(), new_order_id(), new_order_id())

    assert await together.apply(*events) == [Outcome.HANDLED] * len(events)
    for event in events:
        assert await one_at_a_time.apply(event) == [Outcome.HANDLED]

    projections = await together.projections()
    assert projections == await one_at_a_time.projections()
    assert sum(row["events"] for row in projections["ops_topic_rates"]) == len(events)
    assert {row["status"]: row["orders"] for row in projections["ops_state_counts"]} == {
        "return_requested": 1,
        "cancelled": 1,
        "rejected": 1,
    }
    assert [
        (row["sku"], row["ordered_units"], row["ordered_lines"], row["return_units"])
        for row in projections["ops_sku_stats"]
    ] == [("MUG-01", 4, 2, 2), ("TEA-02", 2, 2, 1)]
    assert [(row["sku"], row["units"]) for row in projections["ops_return_reasons"]] == [
        ("MUG-01", 2),
        ("TEA-02", 1),
    ]
    assert [
        (row["sku"], row["available"], row["detected_at"], row["restocked_at"])
        for row in projections["ops_low_stock"]
    ] == [
        ("LAMP-03", None, None, at(3)),
        ("MUG-01", 2, at(6), None),
        ("TEA-02", 1, at(1), at(3)),
    ]
    assert len(projections["ops_notification_failures"]) == 1


async def test_a_later_batch_adds_to_what_the_stored_rows_hold(scene: Scene) -> None:
    order_id = new_order_id()
    await scene.apply(
        placed(order_id, 0), low_stock("MUG-01", 2, 6), restocked(order_id, 9, "MUG-01")
    )

    await scene.apply(
        confirmed(order_id, 1),
        placed(new_order_id(), 0),
        # Older than the stored detection and restock: both stay.
        low_stock("MUG-01", 4, 5),
        restocked(order_id, 8, "MUG-01"),
    )

    orders = {row["order_id"]: row for row in await scene.rows("ops_orders")}
    assert (orders[order_id]["status"], orders[order_id]["placed_at"]) == (
        "confirmed",
        placed(order_id, 0).placed_at,
    )
    assert {row["status"]: row["orders"] for row in await scene.rows("ops_state_counts")} == {
        "placed": 1,
        "confirmed": 1,
    }
    placements = [
        row["events"]
        for row in await scene.rows("ops_topic_rates")
        if (row["second"], row["topic"]) == (at(0), "oms.order.v1")
    ]
    assert placements == [2], "one placement from each batch in the same second"
    [mug, _tea] = await scene.rows("ops_sku_stats")
    assert (mug["ordered_units"], mug["ordered_lines"]) == (4, 2)
    [alert] = await scene.rows("ops_low_stock")
    assert (alert["available"], alert["detected_at"], alert["restocked_at"]) == (2, at(6), at(9))


async def test_a_batch_of_many_orders_runs_the_statements_of_one(scene: Scene) -> None:
    first, second, third = new_order_id(), new_order_id(), new_order_id()
    await scene.apply(*every_projection(first, second, third))
    for_one = list(scene.statements)
    scene.statements.clear()

    many = [(new_order_id(), new_order_id(), new_order_id()) for _ in range(30)]
    await scene.apply(*(event for orders in many for event in every_projection(*orders)))

    assert scene.statements == for_one
    orders = await scene.rows("ops_orders")
    assert len(orders) == 3 * (len(many) + 1)


async def test_the_timeline_records_each_events_trace_sampled_or_not(scene: Scene) -> None:
    order_id = new_order_id()
    sampled, not_sampled = uuid.uuid4().hex, uuid.uuid4().hex
    placement, confirmation = placed(order_id, 0), confirmed(order_id, 1)

    outcomes = await scene.pipeline.process_batch(
        [
            consumed(placement, 0, f"00-{sampled}-{uuid.uuid4().hex[:16]}-01"),
            consumed(confirmation, 1, f"00-{not_sampled}-{uuid.uuid4().hex[:16]}-00"),
        ]
    )

    assert outcomes == [Outcome.HANDLED, Outcome.HANDLED]
    timeline = {row["event_id"]: row["trace_id"] for row in await scene.rows("ops_order_events")}
    assert timeline == {placement.event_id: sampled, confirmation.event_id: not_sampled}
    [order] = await scene.rows("ops_orders")
    assert order["trace_id"] == sampled, "the trace of the record that placed it"


async def test_a_batch_locks_its_orders_in_key_order(scene: Scene) -> None:
    first, second = sorted(new_order_id() for _ in range(2))
    connections = [await asyncpg.connect(scene.dsn) for _ in range(3)]
    holder, loader, prober = connections
    try:
        await holder.execute(
            "INSERT INTO ops_orders (order_id, stage_facts) VALUES ($1, '{}'), ($2, '{}')",
            second,
            first,
        )
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT 1 FROM ops_orders WHERE order_id = $1 FOR UPDATE", second)
        loading = loader.transaction()
        await loading.start()
        # The batch names the later key first, and a new order: its lock waits on `second`.
        fresh = new_order_id()
        load = asyncio.create_task(
            batch_state.load(
                loader, [confirmed(second, 1), confirmed(first, 1), confirmed(fresh, 1)]
            )
        )

        async def first_locked_by_the_batch() -> bool:
            try:
                async with prober.transaction():
                    await prober.execute(
                        "SELECT 1 FROM ops_orders WHERE order_id = $1 FOR UPDATE NOWAIT", first
                    )
            except asyncpg.LockNotAvailableError:
                return True
            return False

        await eventually(first_locked_by_the_batch, timeout=10)
        assert not load.done(), "the batch waits for the order another transaction holds"

        await holding.rollback()
        projections = await asyncio.wait_for(load, timeout=10)
        # The new order's row is the batch's until it commits: another batch creating it
        # waits.
        await prober.execute("SET lock_timeout = '200ms'")
        with pytest.raises(asyncpg.LockNotAvailableError):
            await prober.execute(
                "INSERT INTO ops_orders (order_id, stage_facts) VALUES ($1, '{}') "
                "ON CONFLICT (order_id) DO NOTHING",
                fresh,
            )
        await loading.rollback()
    finally:
        for connection in connections:
            await connection.close()
    assert set(projections.orders) == {first, second, fresh}


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPANS = "oms.telemetry.spans.v1"
DEAD_LETTERS = "oms.deadletter.order.v1"


def raw(
    topic: str, offset: int, value: bytes | None, headers: list[tuple[str, bytes]]
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value or b""),
        headers=headers,
    )


def span(span_id: str, service: str, **fields: object) -> bytes:
    document = {
        "trace_id": TRACE_ID,
        "span_id": span_id,
        "parent_span_id": None,
        "name": f"{service} handle",
        "service": service,
        "kind": "consumer",
        "start_time": at(0).isoformat(),
        "end_time": at(1).isoformat(),
        "status": "ok",
        "attributes": {"oms.order_id": "ord-1", "attempt": 1},
        **fields,
    }
    return json.dumps(document).encode()


async def test_a_fetched_batch_of_dead_letters_and_spans_is_stored_a_statement_per_table(
    scene: Scene,
) -> None:
    topics: dict[str, str | None] = {DEAD_LETTERS: "order", SPANS: None}
    letter_headers = [
        ("dlq_error_class", b"contracts.wire.InvalidEvent"),
        ("dlq_attempts", b"3"),
        ("dlq_offset", b"not a number"),
        ("dlq_failed_at", at(0).isoformat().encode()),
    ]
    records = [
        raw(DEAD_LETTERS, 0, b"poison", [*letter_headers, ("x-origin", b"\xff")]),
        raw(DEAD_LETTERS, 1, None, [*letter_headers, ("dlq_value_omitted_bytes", b"30")]),
        raw(SPANS, 0, span("a" * 16, "order"), []),
        raw(SPANS, 1, span("b" * 16, "inventory", parent_span_id="a" * 16), []),
        raw(SPANS, 2, span("a" * 16, "order"), []),
        raw(SPANS, 3, span("c" * 16, "fulfilment", end_time="yesterday"), []),
        raw(SPANS, 4, b"[1, 2]", []),
        # The view's own, dropped even when its fields would not pass.
        raw(SPANS, 5, span("d" * 16, "operations", trace_id="short"), []),
    ]
    statements: list[str] = []
    connection = await asyncpg.connect(scene.dsn)
    try:
        connection.add_query_logger(lambda logged: statements.append(logged.query))
        await jobs.store_raw(connection, topics, records, own_service="operations")
        stored = await scene.projections()
        await jobs.store_raw(connection, topics, records, own_service="operations")
    finally:
        await connection.close()

    assert len([query for query in statements if "INSERT" in query]) == 2 * 2, "2 a batch"
    assert await scene.projections() == stored, "a batch read again changes nothing"
    letters = stored["ops_dead_letters"]
    assert [(row["dead_letter_offset"], row["value"]) for row in letters] == [
        (0, b"poison"),
        (1, None),
    ]
    assert (letters[0]["attempts"], letters[0]["source_offset"], letters[0]["failed_at"]) == (
        3,
        None,
        at(0),
    )
    assert letters[0]["headers"][-1] == ["x-origin", "\\xff"]
    assert letters[1]["value_omitted_bytes"] == 30
    assert [(row["span_id"], row["parent_span_id"]) for row in stored["ops_spans"]] == [
        ("a" * 16, None),
        ("b" * 16, "a" * 16),
    ]
    assert stored["ops_spans"][0]["attributes"] == {"oms.order_id": "ord-1", "attempt": "1"}
    assert stored["ops_spans"][0]["order_id"] == "ord-1"
