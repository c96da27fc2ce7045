"""Batches on the real broker and database: the records that arrive together are applied
in one transaction; a failure inside a batch never costs the others their effect, never
doubles one, and never lets a later event of a partition overtake an earlier one."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import BigInteger, Column, Identity, Integer, MetaData, String, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Event
from contracts.catalogue import dead_letter_topic
from contracts.events.order import CancellationReason, OrderCancelled
from contracts.wire import encode
from services.kit import dead_letters
from services.kit.kafka import ResilientProducer
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline
from tests.infrastructure import Infrastructure
from tests.kafka_tools import (
    create_topics,
    eventually,
    group_caught_up,
    publish,
    read_all,
    unique_topic,
)
from tests.kit.harness import (
    pipeline_for,
    prepare_database,
    rows_router,
    running_consumer,
    sample_event,
    started_producer,
)

pytestmark = pytest.mark.integration

EVENTS = 10

batch_metadata = MetaData()
applied = Table(
    "applied",
    batch_metadata,
    # In the order the effects were made: identities are drawn as rows are inserted.
    Column("seq", Integer, Identity(), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("transaction_id", BigInteger, nullable=False, server_default=text("txid_current()")),
)


@dataclass
class Scene:
    bootstrap: str
    topic: str
    group: str
    engine: AsyncEngine


@pytest.fixture
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    topic = unique_topic("batches")
    group = f"kit-batch-{uuid.uuid4().hex[:8]}"
    # One partition: every event of the test is in one ordered stream.
    await create_topics(infrastructure.kafka_bootstrap_servers, topic, partitions=1)
    await create_topics(infrastructure.kafka_bootstrap_servers, dead_letter_topic(group))
    engine = await prepare_database(await infrastructure.create_database("kit_batches"))
    async with engine.begin() as connection:
        await connection.run_sync(batch_metadata.create_all)
    yield Scene(infrastructure.kafka_bootstrap_servers, topic, group, engine)
    await engine.dispose()


def order_ids() -> list[str]:
    return [f"ord-{number}" for number in range(EVENTS)]


async def publish_all_before_consuming(scene: Scene) -> None:
    """Published before the consumer starts, so its first fetch returns them together."""
    records = [encode(sample_event(order_id), source="/oms/kit-test") for order_id in order_ids()]
    await publish(
        scene.bootstrap, scene.topic, [(r.key, r.value, list(r.headers)) for r in records]
    )


APPLIED_ROW = "INSERT INTO applied (order_id) VALUES ($1)"


def pipeline_with(
    scene: Scene,
    producer: ResilientProducer,
    metrics: Metrics,
    *,
    before_each: Callable[[Event], None] = lambda _event: None,
) -> EventPipeline:
    router = rows_router(
        APPLIED_ROW, row_of=lambda event: (event.subject(),), before_each=before_each
    )
    return pipeline_for(
        scene.engine, router, producer, scene.group, metrics, transient_retry_seconds=1.0
    )


async def applied_rows(engine: AsyncEngine) -> list[tuple[str, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT order_id, transaction_id FROM applied ORDER BY seq")
        )
        return [(row.order_id, row.transaction_id) for row in rows]


async def test_events_that_arrive_together_are_applied_in_one_transaction(scene: Scene) -> None:
    await publish_all_before_consuming(scene)
    async with started_producer(scene.bootstrap) as producer:
        pipeline = pipeline_with(scene, producer, Metrics())
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):

            async def all_applied() -> bool:
                return len(await applied_rows(scene.engine)) == EVENTS

            await eventually(all_applied)

    rows = await applied_rows(scene.engine)
    assert [order_id for order_id, _ in rows] == order_ids()
    assert len({transaction for _, transaction in rows}) < EVENTS, (
        "events fetched together share a transaction"
    )


async def test_a_handler_failing_mid_batch_dead_letters_its_event_alone(scene: Scene) -> None:
    def refuse_one(event: Event) -> None:
        if event.subject() == "ord-4":
            raise ValueError("refused by a bug")

    await publish_all_before_consuming(scene)
    metrics = Metrics()
    async with started_producer(scene.bootstrap) as producer:
        pipeline = pipeline_with(scene, producer, metrics, before_each=refuse_one)
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):
            [letter] = await read_all(scene.bootstrap, dead_letter_topic(scene.group), expect=1)

            async def others_applied() -> bool:
                return len(await applied_rows(scene.engine)) == EVENTS - 1

            await eventually(others_applied)

    assert letter.key == b"ord-4"
    assert dict(letter.headers)[dead_letters.ERROR_CLASS] == b"builtins.ValueError"
    rows = await applied_rows(scene.engine)
    assert [order_id for order_id, _ in rows] == [o for o in order_ids() if o != "ord-4"], (
        "the rolled-back batch was applied again in parts, in order, each once"
    )
    handled = metrics.events_consumed.labels("kit-test", scene.topic, "handled")._value.get()
    assert handled == EVENTS - 1


async def test_a_transient_failure_holds_back_the_rest_of_its_partition(scene: Scene) -> None:
    database_back_at = time.monotonic() + 4.0

    def away_for_a_while(event: Event) -> None:
        if event.subject() == "ord-3" and time.monotonic() < database_back_at:
            raise ConnectionRefusedError("the database is away")

    await publish_all_before_consuming(scene)
    metrics = Metrics()
    async with started_producer(scene.bootstrap) as producer:
        pipeline = pipeline_with(scene, producer, metrics, before_each=away_for_a_while)
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):

            async def all_applied() -> bool:
                return len(await applied_rows(scene.engine)) == EVENTS

            await eventually(all_applied)

    rows = await applied_rows(scene.engine)
    assert [order_id for order_id, _ in rows] == order_ids(), (
        "nothing after ord-3 was applied before it, and nothing twice"
    )
    retried_later = metrics.events_consumed.labels("kit-test", scene.topic, "retry_later")
    assert retried_later._value.get() >= 1, "ord-3 outlasted one delivery and came again"


async def test_a_batch_applies_a_repeated_event_once_and_each_event_of_an_order_in_order(
    scene: Scene,
) -> None:
    first, second = sample_event("ord-a"), sample_event("ord-a")
    other = sample_event("ord-b")
    # The same event twice (a producer retry), and two events of one order, in one fetch.
    stream = [first, other, first, second]
    records = [encode(event, source="/oms/kit-test") for event in stream]
    await publish(
        scene.bootstrap, scene.topic, [(r.key, r.value, list(r.headers)) for r in records]
    )
    applied: list[str] = []
    metrics = Metrics()
    async with started_producer(scene.bootstrap) as producer:
        pipeline = pipeline_with(
            scene, producer, metrics, before_each=lambda event: applied.append(str(event.event_id))
        )
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):

            async def all_applied() -> bool:
                return len(await applied_rows(scene.engine)) == 3

            await eventually(all_applied)

    rows = await applied_rows(scene.engine)
    assert [order_id for order_id, _ in rows] == ["ord-a", "ord-b", "ord-a"]
    assert applied == [str(first.event_id), str(other.event_id), str(second.event_id)], (
        "each event applied once, in the order consumed"
    )
    assert len({transaction for _, transaction in rows}) == 1, "one fetch, one transaction"
    duplicates = metrics.events_consumed.labels("kit-test", scene.topic, "duplicate")
    assert duplicates._value.get() == 1


async def test_records_of_types_the_service_does_not_apply_are_skipped_unread_and_committed(
    scene: Scene,
) -> None:
    applied_event = sample_event("ord-a")
    # Another catalogue type, with a body that is not even JSON: read, it would be a
    # dead letter; skipped on its header, it costs nothing and its offset is committed.
    skipped = encode(
        OrderCancelled(order_id="ord-z", reason=CancellationReason.OTHER, cancelled_by="system"),
        source="/oms/kit-test",
    )
    applied_record = encode(applied_event, source="/oms/kit-test")
    await publish(
        scene.bootstrap,
        scene.topic,
        [
            (skipped.key, b"not json at all", list(skipped.headers)),
            (applied_record.key, applied_record.value, list(applied_record.headers)),
        ],
    )
    metrics = Metrics()
    async with started_producer(scene.bootstrap) as producer:
        pipeline = pipeline_with(scene, producer, metrics)
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):

            async def applied() -> bool:
                return len(await applied_rows(scene.engine)) == 1

            await eventually(applied)

    assert await group_caught_up(scene.bootstrap, scene.group, scene.topic), (
        "the skipped record's offset is committed with the applied one's"
    )
    outcome = metrics.events_consumed.labels
    assert outcome("kit-test", scene.topic, "ignored")._value.get() == 1
    assert outcome("kit-test", scene.topic, "dead_lettered")._value.get() == 0
