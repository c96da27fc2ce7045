"""Consumed events applied a fetched batch at a time, on the real database: each event of
a batch sees what the ones before it changed (the same order twice, a stock row shared),
every table is written once per batch, and batches of two replicas sharing rows queue
instead of deadlocking or overwriting each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.base import Event
from contracts.events.inventory import (
    LowStockDetected,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockRestocked,
)
from contracts.wire import decode, encode, header_map
from services.inventory import batch_state, db, handlers, service
from services.inventory.app import MIGRATIONS
from services.inventory.batch_state import InventoryBatch, OrderAnsweredMeanwhile
from services.inventory.domain import Location, StockLevel
from services.inventory.service import StockPolicy
from services.kit import migrations
from services.kit.batch import Context
from services.kit.dead_letters import ConsumedRecord, DeadLetterPublisher
from services.kit.emitted import EmittedEvents
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline, Outcome
from services.kit.topics import TopicNames
from services.kit.unit_of_work import UnitOfWork
from tests.infrastructure import Infrastructure
from tests.inventory.factories import (
    order_cancelled,
    order_placed,
    return_received,
    shipped,
    unique,
)
from tests.kit.harness import started_producer

pytestmark = pytest.mark.integration

WAREHOUSES = {
    "wh-paris": ("FR", Location(48.86, 2.35)),
    "wh-berlin": ("DE", Location(52.52, 13.40)),
}
DEFAULT_THRESHOLD = 2
NAMES = TopicNames()
SOURCE = "/oms/inventory"
WAITING = 0.5
"""Long enough for a batch that could go ahead to have done so."""


@dataclass
class Scene:
    engine: AsyncEngine
    dsn: str
    pipeline: EventPipeline
    statements: list[str]
    """Every statement the batches ran, as sent."""
    offsets: Iterator[int] = field(default_factory=itertools.count)
    read_up_to: int = 0

    async def apply(self, *events: Event) -> list[Event]:
        """Applies the events as one fetched batch; returns what it emitted, in order."""
        records = []
        for event in events:
            record = encode(event, source="/test")
            records.append(
                ConsumedRecord(
                    topic=NAMES.of_event(type(event)),
                    partition=0,
                    offset=next(self.offsets),
                    key=record.key,
                    value=record.value,
                    headers=list(record.headers),
                )
            )
        outcomes = await self.pipeline.process_batch(records)
        assert outcomes == [Outcome.HANDLED] * len(events)
        return await self.emitted()

    async def emitted(self) -> list[Event]:
        async with self.connection() as connection:
            rows = await connection.fetch(
                "SELECT id, value, headers FROM outbox WHERE id > $1 ORDER BY id",
                self.read_up_to,
            )
        if rows:
            self.read_up_to = rows[-1]["id"]
        return [decode(header_map(json.loads(row["headers"])), row["value"]) for row in rows]

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        connection = await asyncpg.connect(self.dsn)
        try:
            yield connection
        finally:
            await connection.close()

    async def receive(self, sku: str, warehouse_id: str, quantity: int) -> None:
        async with UnitOfWork(self.engine, source=SOURCE) as uow:
            received = await service.receive_stock(
                uow, sku=sku, warehouse_id=warehouse_id, quantity=quantity, reference=unique("po")
            )
        assert isinstance(received, service.StockChange)

    async def levels(self, sku: str) -> dict[str, tuple[int, int]]:
        """warehouse → (on_hand, reserved); and checks the ledger adds up to the same."""
        async with self.engine.connect() as connection:
            rows = await db.stock_of_sku(connection, sku)
            ledger = await db.movements(
                connection, sku=sku, warehouse_id=None, order_id=None, after=0, limit=1000
            )
        levels = {row.warehouse_id: (row.level.on_hand, row.level.reserved) for row in rows}
        from_ledger: dict[str, tuple[int, int]] = {}
        for recorded in ledger:
            on_hand, reserved = from_ledger.get(recorded.movement.warehouse_id, (0, 0))
            from_ledger[recorded.movement.warehouse_id] = (
                on_hand + recorded.movement.on_hand_change,
                reserved + recorded.movement.reserved_change,
            )
        assert from_ledger == levels, "the ledger does not account for every unit"
        return levels

    async def reservation(self, order_id: str) -> db.Reservation | None:
        async with self.engine.connect() as connection:
            return await db.find_reservation(connection, order_id)


@pytest_asyncio.fixture(scope="module")
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    url = await infrastructure.create_database("inventory_batches")
    await asyncio.to_thread(migrations.upgrade, url, MIGRATIONS)
    engine = create_async_engine(url)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    statements: list[str] = []

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[asyncpg.Connection]:
        connection = await asyncpg.connect(
            dsn, server_settings={"plan_cache_mode": "force_custom_plan"}
        )
        connection.add_query_logger(lambda logged: statements.append(logged.query))
        try:
            yield connection
        finally:
            await connection.close()

    async with started_producer(infrastructure.kafka_bootstrap_servers) as producer:
        pipeline = EventPipeline(
            service="inventory",
            connect=connect,
            router=handlers.router(StockPolicy(default_low_stock_threshold=DEFAULT_THRESHOLD)),
            source=SOURCE,
            unit_of_work=lambda cause: UnitOfWork(engine, source=SOURCE, cause=cause),
            dead_letters=DeadLetterPublisher(producer, f"inventory-batches-{uuid.uuid4().hex}"),
            metrics=Metrics(),
            topic_names=NAMES,
        )
        for warehouse_id, (country, location) in WAREHOUSES.items():
            async with UnitOfWork(engine, source=SOURCE) as uow:
                await service.save_warehouse(
                    uow, db.Warehouse(warehouse_id, warehouse_id, country, location)
                )
        yield Scene(engine, dsn, pipeline, statements)
    await engine.dispose()


# --- The same order twice in one batch -------------------------------------------------


async def test_an_order_placed_and_cancelled_in_one_batch_gives_back_what_it_held(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    order = order_placed(unique("ord"), {sku: 3})

    emitted = await scene.apply(order, order_cancelled(order.order_id))

    assert [type(event) for event in emitted] == [StockReserved, StockReleased]
    reserved, released = emitted
    assert isinstance(reserved, StockReserved) and isinstance(released, StockReleased)
    assert released.reservation_id == reserved.reservation_id
    assert released.allocations == reserved.allocations
    assert await scene.levels(sku) == {"wh-paris": (5, 0)}
    reservation = await scene.reservation(order.order_id)
    assert reservation is not None
    assert (reservation.status.value, reservation.cancelled) == ("released", True)
    assert [(line.reserved, line.released) for line in reservation.lines] == [(3, 3)]


async def test_an_order_placed_and_shipped_in_one_batch_ships_what_it_just_reserved(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    order = order_placed(unique("ord"), {sku: 3})

    emitted = await scene.apply(order, shipped(order.order_id, "wh-paris", {sku: 3}))

    assert [type(event) for event in emitted] == [StockReserved, StockCommitted]
    assert await scene.levels(sku) == {"wh-paris": (2, 0)}
    reservation = await scene.reservation(order.order_id)
    assert reservation is not None
    assert reservation.status.value == "committed"
    assert [(line.reserved, line.committed) for line in reservation.lines] == [(3, 3)]


async def test_an_order_placed_twice_in_one_batch_is_reserved_once(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 10)
    order_id = unique("ord")

    emitted = await scene.apply(order_placed(order_id, {sku: 4}), order_placed(order_id, {sku: 4}))

    assert [type(event) for event in emitted] == [StockReserved]
    assert await scene.levels(sku) == {"wh-paris": (10, 4)}


async def test_an_order_cancelled_before_its_placement_in_one_batch_is_never_reserved(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 10)
    order = order_placed(unique("ord"), {sku: 1})

    emitted = await scene.apply(order_cancelled(order.order_id), order)

    assert emitted == []
    assert await scene.reservation(order.order_id) is None
    assert await scene.levels(sku) == {"wh-paris": (10, 0)}


async def test_the_same_shipment_twice_in_one_batch_is_committed_once(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 10)
    order_id, shipment_id = unique("ord"), unique("shp")

    emitted = await scene.apply(
        shipped(order_id, "wh-paris", {sku: 2}, shipment_id=shipment_id),
        shipped(order_id, "wh-paris", {sku: 2}, shipment_id=shipment_id),
    )

    assert [type(event) for event in emitted] == [StockCommitted]
    assert await scene.levels(sku) == {"wh-paris": (8, 0)}


# --- Rows shared by the events of one batch --------------------------------------------


async def test_orders_sharing_a_stock_row_each_take_from_what_the_one_before_left(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    first, second, third = (order_placed(unique("ord"), {sku: 2}) for _ in range(3))

    emitted = await scene.apply(first, second, third)

    # Available goes 5, 3, 1 (below the default threshold of 2: the alert), and the third
    # order finds 1 of the 2 it wants.
    assert [(type(event), event.subject()) for event in emitted] == [
        (StockReserved, first.order_id),
        (LowStockDetected, sku),
        (StockReserved, second.order_id),
        (StockReservationFailed, third.order_id),
    ]
    failed = emitted[-1]
    assert isinstance(failed, StockReservationFailed)
    assert [(short.requested, short.available) for short in failed.shortages] == [(2, 1)]
    assert await scene.levels(sku) == {"wh-paris": (5, 4)}


async def test_low_stock_is_detected_once_when_a_batch_takes_a_row_below_its_threshold(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-berlin", 4)
    orders = [order_placed(unique("ord"), {sku: 1}, country="DE") for _ in range(3)]

    emitted = await scene.apply(*orders)

    # Available goes 4, 3, 2, 1: below the default threshold of 2 at the third order only.
    low = [event for event in emitted if isinstance(event, LowStockDetected)]
    assert [(e.warehouse_id, e.available, e.threshold) for e in low] == [("wh-berlin", 1, 2)]
    assert [type(event) for event in emitted] == [
        StockReserved,
        StockReserved,
        LowStockDetected,
        StockReserved,
    ]


async def test_a_return_makes_the_row_an_order_later_in_the_batch_reserves_from(
    scene: Scene,
) -> None:
    sku = unique("A")
    received = return_received(unique("ord"), "wh-berlin", {sku: (3, 3)})
    order = order_placed(unique("ord"), {sku: 1}, country="DE")

    emitted = await scene.apply(received, order)

    assert [type(event) for event in emitted] == [StockRestocked, StockReserved]
    assert await scene.levels(sku) == {"wh-berlin": (3, 1)}


async def test_a_batch_runs_as_many_statements_for_many_orders_as_for_one(
    scene: Scene,
) -> None:
    sku, other = unique("A"), unique("B")
    await scene.receive(sku, "wh-paris", 100)
    await scene.receive(other, "wh-berlin", 100)

    scene.statements.clear()
    await scene.apply(order_placed(unique("ord"), {sku: 1, other: 1}))
    for_one = list(scene.statements)
    scene.statements.clear()
    await scene.apply(
        *(order_placed(unique("ord"), {sku: 1, other: 1}) for _ in range(20)),
        *(order_placed(unique("ord"), {unique("NONE"): 1}) for _ in range(5)),
    )

    assert scene.statements == for_one


# --- Two batches sharing rows ----------------------------------------------------------


def recorder() -> EmittedEvents:
    return EmittedEvents(
        source=SOURCE, topic_for=NAMES.of_event, tracer=trace.get_tracer(__name__), service=None
    )


def context(emitted: EmittedEvents | None = None) -> Context:
    return Context(emitted or recorder(), datetime.now(UTC))


async def load(connection: asyncpg.Connection, events: Sequence[Event]) -> InventoryBatch:
    return await batch_state.load(connection, events, default_threshold=DEFAULT_THRESHOLD)


async def test_a_batch_waits_for_one_holding_its_rows_and_reads_what_it_left(
    scene: Scene,
) -> None:
    first_sku, second_sku = sorted((unique("A"), unique("B")))
    for sku in (first_sku, second_sku):
        await scene.receive(sku, "wh-paris", 5)
    holding = order_placed(unique("ord"), {first_sku: 3, second_sku: 3})
    # The same rows named the other way round: the locks are still taken in key order.
    waiting = order_placed(unique("ord"), {second_sku: 3, first_sku: 3})

    async def apply_later(connection: asyncpg.Connection) -> list[StockLevel]:
        async with connection.transaction():
            batch = await load(connection, [waiting])
            service.reserve_for_order(batch, waiting, context())
            await batch_state.save(connection, batch)
        return [batch.stock[(sku, "wh-paris")] for sku in (first_sku, second_sku)]

    async with scene.connection() as first, scene.connection() as second:
        async with first.transaction():
            batch = await load(first, [holding])
            later = asyncio.create_task(apply_later(second))
            await asyncio.sleep(WAITING)
            assert not later.done()
            service.reserve_for_order(batch, holding, context())
            await batch_state.save(first, batch)
        levels = await asyncio.wait_for(later, timeout=10)

    # The waiting batch found 2 of each left: too few, so it reserved nothing.
    assert levels == [StockLevel(5, 3), StockLevel(5, 3)]
    assert await scene.levels(first_sku) == {"wh-paris": (5, 3)}
    waiting_reservation = await scene.reservation(waiting.order_id)
    assert waiting_reservation is not None
    assert waiting_reservation.status.value == "failed"


async def test_a_cancellation_waits_for_the_shipment_holding_its_order_and_sees_it_left(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    order = order_placed(unique("ord"), {sku: 2})
    await scene.apply(order)
    shipment = shipped(order.order_id, "wh-paris", {sku: 2})
    cancellation = order_cancelled(order.order_id)
    released = recorder()

    async def cancel_later(connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            batch = await load(connection, [cancellation])
            service.release_for_cancelled_order(batch, cancellation, context(released))
            await batch_state.save(connection, batch)

    async with scene.connection() as first, scene.connection() as second:
        async with first.transaction():
            batch = await load(first, [shipment])
            later = asyncio.create_task(cancel_later(second))
            await asyncio.sleep(WAITING)
            assert not later.done()
            service.commit_shipment(batch, shipment, context())
            await batch_state.save(first, batch)
        await asyncio.wait_for(later, timeout=10)

    # The cancellation read the reservation as the shipment left it: nothing held.
    assert released.rows == []
    assert await scene.levels(sku) == {"wh-paris": (3, 0)}
    reservation = await scene.reservation(order.order_id)
    assert reservation is not None
    assert (reservation.status.value, reservation.cancelled) == ("committed", True)
    assert [(line.committed, line.released) for line in reservation.lines] == [(2, 0)]


async def test_an_order_answered_elsewhere_after_the_load_fails_the_batch_unwritten(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    order = order_placed(unique("ord"), {sku: 1})

    async with scene.connection() as connection, scene.connection() as elsewhere:
        with pytest.raises(OrderAnsweredMeanwhile, match=order.order_id):
            async with connection.transaction():
                batch = await load(connection, [order])
                await elsewhere.execute(
                    "INSERT INTO reservations (order_id, reservation_id, status) "
                    "VALUES ($1, $2, 'failed')",
                    order.order_id,
                    "res_elsewhere",
                )
                service.reserve_for_order(batch, order, context())
                await batch_state.save(connection, batch)

    reservation = await scene.reservation(order.order_id)
    assert reservation is not None
    assert (reservation.reservation_id, reservation.lines) == ("res_elsewhere", ())
    assert await scene.levels(sku) == {"wh-paris": (5, 0)}
    # Applied again, the order is found answered.
    assert await scene.apply(order) == []
