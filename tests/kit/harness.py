"""A minimal consuming service built only from kit parts, for the delivery tests: its one
effect is a row in `effects` per handled event, with no uniqueness of its own, so a
doubled effect shows up as two rows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from sqlalchemy import Column, MetaData, String, Table, Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.base import Event
from contracts.events.order import OrderConfirmed
from services.kit import migrations
from services.kit.batch import Context, Router
from services.kit.consumer import ConsumerLoop
from services.kit.dead_letters import DeadLetterPublisher
from services.kit.kafka import ResilientProducer
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline
from services.kit.relay import OutboxRelay
from services.kit.topics import TopicNames
from services.kit.unit_of_work import Cause, UnitOfWork

test_metadata = MetaData()
effects = Table(
    "effects",
    test_metadata,
    Column("event_id", Uuid, nullable=False),
    Column("order_id", String(64), nullable=False),
)

NO_SERVICE_MIGRATIONS = Path("/nonexistent")


async def prepare_database(url: str) -> AsyncEngine:
    await asyncio.to_thread(migrations.upgrade, url, NO_SERVICE_MIGRATIONS)
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(test_metadata.create_all)
    return engine


def sample_event(order_id: str) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, reservation_id=f"res-{order_id}")


EFFECT_ROW = "INSERT INTO effects (event_id, order_id) VALUES ($1, $2)"


def rows_router(
    insert_row: str = EFFECT_ROW,
    *,
    row_of: Callable[[Event], tuple[Any, ...]] = lambda event: (event.event_id, event.subject()),
    before_each: Callable[[Event], None] = lambda _event: None,
) -> Router[list[Event]]:
    """A router applying OrderConfirmed: each event becomes a row (`insert_row` with the
    values `row_of` gives), in the order applied; `before_each` runs first and may raise,
    as a failing use case would."""

    async def load(_connection: asyncpg.Connection, _events: Sequence[Event]) -> list[Event]:
        return []

    async def save(connection: asyncpg.Connection, applied: list[Event]) -> None:
        if applied:
            await connection.executemany(insert_row, [row_of(event) for event in applied])

    router: Router[list[Event]] = Router(load=load, save=save)

    @router.on(OrderConfirmed)
    def apply(applied: list[Event], event: OrderConfirmed, _context: Context) -> None:
        before_each(event)
        applied.append(event)

    return router


async def effect_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(effects.c.order_id, func.count()).group_by(effects.c.order_id)
        )
        return {order_id: count for order_id, count in rows.all()}


def make_relay(engine: AsyncEngine, producer: ResilientProducer, metrics: Metrics) -> OutboxRelay:
    return OutboxRelay(
        service="kit-test",
        engine=engine,
        producer=producer,
        tracer=TracerProvider().get_tracer("test"),
        metrics=metrics,
    )


def pipeline_for(
    engine: AsyncEngine,
    router: Router[Any],
    producer: ResilientProducer,
    group: str,
    metrics: Metrics,
    *,
    topic_names: TopicNames | None = None,
    transient_retry_seconds: float = 5.0,
    tracer: Tracer | None = None,
    source: str = "/oms/kit-test",
) -> EventPipeline:
    """A pipeline applying `router` on the database of `engine` (its own asyncpg
    connections, as a service's runtime makes them)."""
    dsn = engine.url.render_as_string(hide_password=False).replace("+asyncpg", "")

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[asyncpg.Connection]:
        connection = await asyncpg.connect(dsn)
        try:
            yield connection
        finally:
            await connection.close()

    def unit_of_work(cause: Cause | None) -> UnitOfWork:
        return UnitOfWork(engine, source=source, cause=cause)

    return EventPipeline(
        service="kit-test",
        connect=connect,
        router=router,
        source=source,
        unit_of_work=unit_of_work,
        dead_letters=DeadLetterPublisher(producer, group),
        metrics=metrics,
        max_attempts=2,
        transient_retry_seconds=transient_retry_seconds,
        topic_names=topic_names,
        tracer=tracer,
    )


def make_pipeline(
    engine: AsyncEngine,
    producer: ResilientProducer,
    group: str,
    metrics: Metrics,
    topic_names: TopicNames | None = None,
) -> EventPipeline:
    """The delivery tests' consumer: one row in `effects` per applied event."""
    return pipeline_for(engine, rows_router(), producer, group, metrics, topic_names=topic_names)


@contextlib.asynccontextmanager
async def running_consumer(
    bootstrap: str, topic: str | list[str], group: str, pipeline: EventPipeline
) -> AsyncIterator[None]:
    consumer = ConsumerLoop(
        pipeline,
        bootstrap_servers=bootstrap,
        topics=[topic] if isinstance(topic, str) else topic,
        group_id=group,
        client_id=f"{group}-test",
        from_beginning=True,
        lanes=2,
    )
    await consumer.start()
    try:
        yield
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def started_producer(bootstrap: str) -> AsyncIterator[ResilientProducer]:
    producer = ResilientProducer(
        lambda: AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
