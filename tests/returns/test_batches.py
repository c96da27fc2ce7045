"""Order facts consumed a batch at a time, on the real PostgreSQL: the batches are applied
through the kit's pipeline exactly as the consumer hands them over, records already read
from Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.base import Event
from contracts.events.common import SkuQuantity
from contracts.events.fulfilment import Delivered, Shipped
from contracts.wire import encode
from services.kit import migrations
from services.kit.dead_letters import ConsumedRecord, DeadLetterPublisher
from services.kit.emitted import Cause
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline, Outcome
from services.kit.topics import TopicNames
from services.kit.unit_of_work import UnitOfWork
from services.returns import batch_state, db, domain, handlers
from services.returns.app import MIGRATIONS
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually
from tests.kit.harness import started_producer
from tests.returns.test_returns_service import WAREHOUSE, placed

pytestmark = pytest.mark.integration

SOURCE = "/oms/returns"
NOW = datetime.now(UTC)


@dataclass
class Scene:
    database: AsyncEngine
    dsn: str
    pipeline: EventPipeline
    statements: list[str]
    """Every statement the pipeline's connections ran, in order."""

    async def apply(self, *events: Event) -> list[Outcome]:
        """The events as one consumed batch, in the order given."""
        names = TopicNames()
        records = []
        for offset, event in enumerate(events):
            record = encode(event, source="/test")
            records.append(
                ConsumedRecord(
                    topic=names.of_event(type(event)),
                    partition=0,
                    offset=offset,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                )
            )
        return await self.pipeline.process_batch(records)

    async def transactions_that_claimed(self, events: Sequence[Event]) -> int:
        """How many transactions recorded these events in the inbox."""
        connection = await asyncpg.connect(self.dsn)
        try:
            return int(
                await connection.fetchval(
                    "SELECT count(DISTINCT xmin::text) FROM inbox WHERE event_id = ANY($1)",
                    [event.event_id for event in events],
                )
            )
        finally:
            await connection.close()

    async def order(self, order_id: str) -> domain.OrderFacts | None:
        async with self.database.connect() as connection:
            return await db.load_order(connection, order_id)


@pytest.fixture(scope="module")
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    database_url = await infrastructure.create_database("returns_batches")
    await asyncio.to_thread(migrations.upgrade, database_url, MIGRATIONS)
    database = create_async_engine(database_url)
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    statements: list[str] = []

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[asyncpg.Connection]:
        connection = await asyncpg.connect(dsn)
        connection.add_query_logger(lambda logged: statements.append(logged.query))
        try:
            yield connection
        finally:
            await connection.close()

    def unit_of_work(cause: Cause | None) -> UnitOfWork:
        return UnitOfWork(database, source=SOURCE, cause=cause)

    async with started_producer(infrastructure.kafka_bootstrap_servers) as producer:
        pipeline = EventPipeline(
            service="returns",
            connect=connect,
            router=handlers.router(),
            source=SOURCE,
            unit_of_work=unit_of_work,
            dead_letters=DeadLetterPublisher(producer, f"returns-{uuid.uuid4().hex[:8]}"),
            metrics=Metrics(),
        )
        yield Scene(database, dsn, pipeline, statements)
    await database.dispose()


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


def shipped(order_id: str, shipment_id: str, warehouse_id: str, *lines: tuple[str, int]) -> Shipped:
    return Shipped(
        order_id=order_id,
        shipment_id=shipment_id,
        warehouse_id=warehouse_id,
        carrier="colissimo",
        tracking_number="TRK1",
        lines=tuple(SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines),
        shipped_at=NOW - timedelta(days=3),
    )


def delivered(order_id: str, shipment_id: str, days_ago: float) -> Delivered:
    return Delivered(
        order_id=order_id,
        shipment_id=shipment_id,
        tracking_number="TRK1",
        delivered_at=NOW - timedelta(days=days_ago),
    )


async def test_an_order_twice_in_a_batch_sees_its_own_first_facts(scene: Scene) -> None:
    order_id = new_order_id()
    batch = [
        # Its delivery before its shipment, and its shipment before its placement: the
        # topics are read in any order.
        delivered(order_id, "shp_1", days_ago=2),
        shipped(order_id, "shp_1", WAREHOUSE, ("MUG", 2), ("TEE", 2), ("MUG", 1)),
        placed(order_id),
        # Reported again under new event ids: the first report counts.
        shipped(order_id, "shp_1", "wh-other", ("MUG", 1)),
        delivered(order_id, "shp_1", days_ago=1),
        placed(order_id),
    ]

    assert await scene.apply(*batch) == [Outcome.HANDLED] * len(batch)

    assert await scene.transactions_that_claimed(batch) == 1
    order = await scene.order(order_id)
    assert order is not None and order.placement is not None
    assert [(line.sku, line.quantity) for line in order.placement.lines] == [
        ("MUG", 3),
        ("TEE", 2),
    ]
    assert order.shipments == (
        domain.Shipment(
            shipment_id="shp_1",
            warehouse_id=WAREHOUSE,
            shipped_at=NOW - timedelta(days=3),
            quantities={"MUG": 3, "TEE": 2},
            delivered_at=NOW - timedelta(days=2),
        ),
    )


async def test_a_later_batch_leaves_the_stored_facts_as_they_are(scene: Scene) -> None:
    order_id = new_order_id()
    await scene.apply(
        placed(order_id),
        shipped(order_id, "shp_1", WAREHOUSE, ("MUG", 3), ("TEE", 2)),
        delivered(order_id, "shp_1", days_ago=2),
    )
    before = await scene.order(order_id)
    only_delivered = new_order_id()

    again = [
        shipped(order_id, "shp_1", "wh-other", ("MUG", 1)),
        delivered(order_id, "shp_1", days_ago=1),
        delivered(only_delivered, "shp_9", days_ago=1),
    ]
    assert await scene.apply(*again) == [Outcome.HANDLED] * len(again)

    assert await scene.order(order_id) == before
    assert await scene.order(only_delivered) is None, "a delivery alone makes no order known"


async def test_a_batch_of_many_orders_runs_the_statements_of_one(scene: Scene) -> None:
    def facts_of(order_id: str) -> list[Event]:
        return [
            placed(order_id),
            shipped(order_id, "shp_1", WAREHOUSE, ("MUG", 3), ("TEE", 2)),
            delivered(order_id, "shp_1", days_ago=2),
        ]

    scene.statements.clear()
    await scene.apply(*facts_of(new_order_id()))
    for_one = list(scene.statements)

    scene.statements.clear()
    many = [new_order_id() for _ in range(50)]
    await scene.apply(*(fact for order_id in many for fact in facts_of(order_id)))

    assert scene.statements == for_one
    for order_id in many:
        order = await scene.order(order_id)
        assert order is not None and order.placement is not None and order.shipments


async def test_a_batch_locks_its_stored_orders_in_key_order(scene: Scene) -> None:
    first, second = sorted(new_order_id() for _ in range(2))
    connections = [await asyncpg.connect(scene.dsn) for _ in range(3)]
    holder, loader, prober = connections
    try:
        # Stored in the other order, so a scan without sorting would meet `second` first.
        await holder.execute("INSERT INTO orders (order_id) VALUES ($1), ($2)", second, first)
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE", second)
        loading = loader.transaction()
        await loading.start()
        # The batch names the later key first; its lock waits on it.
        load = asyncio.create_task(
            batch_state.load(loader, [delivered(second, "s", 1), delivered(first, "s", 1)])
        )

        async def first_locked_by_the_batch() -> bool:
            try:
                async with prober.transaction():
                    await prober.execute(
                        "SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE NOWAIT", first
                    )
            except asyncpg.LockNotAvailableError:
                return True
            return False

        await eventually(first_locked_by_the_batch, timeout=10)
        assert not load.done(), "the batch waits for the order a command holds"

        await holding.rollback()
        facts = await asyncio.wait_for(load, timeout=10)
        await loading.rollback()
    finally:
        for connection in connections:
            await connection.close()
    assert facts.stored_orders == {first, second}


async def test_facts_stored_by_another_batch_after_the_load_are_kept(scene: Scene) -> None:
    """An order not yet stored has no row to lock: a batch on another topic may store its
    placement and the same shipment meanwhile, and this batch must not undo either."""
    order_id = new_order_id()
    connection = await asyncpg.connect(scene.dsn)
    try:
        async with connection.transaction():
            facts = await batch_state.load(connection, [delivered(order_id, "shp_1", 1)])
            facts.record_shipment(
                order_id,
                domain.Shipment("shp_1", "wh-other", NOW, quantities={"CAP": 1}),
            )
            await scene.apply(
                placed(order_id), shipped(order_id, "shp_1", WAREHOUSE, ("MUG", 3), ("TEE", 2))
            )
            stored = await scene.order(order_id)
            await batch_state.save(connection, facts)
    finally:
        await connection.close()

    assert stored is not None and stored.placement is not None
    assert await scene.order(order_id) == stored
