"""A minimal consuming service built only from kit parts, for the delivery tests: its one
effect is a row in `effects` per handled event, with no uniqueness of its own, so a
doubled effect shows up as two rows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Column, MetaData, String, Table, Uuid, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.base import Event
from contracts.events.order import OrderConfirmed
from services.kit import migrations
from services.kit.consumer import subscribe
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


async def record_effect(uow: UnitOfWork, event: Event) -> None:
    await uow.connection.execute(
        insert(effects).values(event_id=event.event_id, order_id=event.subject())
    )


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


def make_pipeline(
    engine: AsyncEngine,
    producer: ResilientProducer,
    group: str,
    metrics: Metrics,
    topic_names: TopicNames | None = None,
) -> EventPipeline:
    def unit_of_work(cause: Cause | None) -> UnitOfWork:
        return UnitOfWork(engine, source="/oms/kit-test", cause=cause)

    return EventPipeline(
        service="kit-test",
        unit_of_work=unit_of_work,
        routes={OrderConfirmed: record_effect},
        dead_letters=DeadLetterPublisher(producer, group),
        metrics=metrics,
        max_attempts=2,
        transient_retry_seconds=5.0,
        topic_names=topic_names,
    )


@contextlib.asynccontextmanager
async def running_consumer(
    bootstrap: str, topic: str | list[str], group: str, pipeline: EventPipeline
) -> AsyncIterator[None]:
    broker = KafkaBroker(bootstrap)
    topics = [topic] if isinstance(topic, str) else topic
    offsets = subscribe(broker, pipeline, topics=topics, group_id=group, from_beginning=True)
    await broker.start()
    try:
        yield
    finally:
        await offsets.flush()
        await broker.stop()


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
