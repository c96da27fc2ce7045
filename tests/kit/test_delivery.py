"""The kit's delivery guarantees against the real broker and database, with processes
that really die: no effect lost, none doubled, bad records never stop a consumer."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.catalogue import dead_letter_topic
from contracts.wire import encode
from services.kit import dead_letters
from services.kit.kafka import ResilientProducer
from services.kit.metrics import Metrics
from services.kit.tables import outbox
from services.kit.topics import TopicNames
from services.kit.unit_of_work import UnitOfWork
from tests.infrastructure import REPO, Infrastructure
from tests.kafka_tools import create_topics, eventually, publish, read_all, unique_topic
from tests.kit.harness import (
    effect_counts,
    make_pipeline,
    make_relay,
    prepare_database,
    running_consumer,
    sample_event,
    started_producer,
)

pytestmark = pytest.mark.integration

EVENTS = 20


@dataclass
class Scene:
    bootstrap: str
    topic: str
    group: str
    producer_db: AsyncEngine
    producer_db_url: str
    consumer_db: AsyncEngine
    consumer_db_url: str


@pytest.fixture
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    topic = unique_topic("delivery")
    group = f"kit-test-{uuid.uuid4().hex[:8]}"
    await create_topics(infrastructure.kafka_bootstrap_servers, topic, dead_letter_topic(group))
    producer_url = await infrastructure.create_database("kit_producer")
    consumer_url = await infrastructure.create_database("kit_consumer")
    producer_db = await prepare_database(producer_url)
    consumer_db = await prepare_database(consumer_url)
    yield Scene(
        infrastructure.kafka_bootstrap_servers,
        topic,
        group,
        producer_db,
        producer_url,
        consumer_db,
        consumer_url,
    )
    await producer_db.dispose()
    await consumer_db.dispose()


def run_child(*arguments: str) -> int:
    child = subprocess.run(
        [sys.executable, "-m", "tests.kit.crash_child", *arguments],
        cwd=REPO,
        timeout=120,
        check=False,
    )
    return child.returncode


async def record_events(scene: Scene, order_ids: list[str]) -> None:
    for order_id in order_ids:
        async with UnitOfWork(
            scene.producer_db, source="/oms/kit-test", topic_for=lambda _cls: scene.topic
        ) as uow:
            uow.emit(sample_event(order_id))


async def unsent(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        )
        return int(count or 0)


async def test_relay_killed_after_publishing_before_marking_sent_still_yields_one_effect_each(
    scene: Scene,
) -> None:
    order_ids = [f"ord-relay-{n}" for n in range(EVENTS)]
    await record_events(scene, order_ids)

    exit_code = await asyncio.to_thread(
        run_child, "relay-dies-before-marking", scene.producer_db_url, scene.bootstrap
    )

    assert exit_code == 137
    assert await unsent(scene.producer_db) == EVENTS, "the killed relay marked nothing sent"
    async with started_producer(scene.bootstrap) as producer:
        assert await make_relay(scene.producer_db, producer, Metrics()).publish_batch() == EVENTS
    assert await unsent(scene.producer_db) == 0
    on_topic = await read_all(scene.bootstrap, scene.topic, expect=2 * EVENTS)
    assert len(on_topic) == 2 * EVENTS, "every event was published twice"

    metrics = Metrics()
    async with started_producer(scene.bootstrap) as producer:
        pipeline = make_pipeline(scene.consumer_db, producer, scene.group, metrics)
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):

            async def all_consumed() -> bool:
                duplicates = metrics.inbox_duplicates.labels("kit-test")._value.get()
                return (
                    duplicates >= EVENTS and len(await effect_counts(scene.consumer_db)) == EVENTS
                )

            await eventually(all_consumed)

    assert await effect_counts(scene.consumer_db) == dict.fromkeys(order_ids, 1)


async def test_consumer_killed_after_its_effect_before_committing_does_not_repeat_it(
    scene: Scene,
) -> None:
    events = [sample_event(f"ord-consumer-{n}") for n in range(EVENTS)]
    await publish(
        scene.bootstrap,
        scene.topic,
        [
            (record.key, record.value, record.headers)
            for record in (encode(event, source="/oms/kit-test") for event in events)
        ],
    )

    exit_code = await asyncio.to_thread(
        run_child,
        "consumer-dies-before-commit",
        scene.consumer_db_url,
        scene.bootstrap,
        scene.topic,
        scene.group,
    )

    assert exit_code == 137
    applied_before_kill = sum((await effect_counts(scene.consumer_db)).values())
    assert applied_before_kill >= 1, "the child committed its first batch's effects"
    metrics = Metrics()
    async with started_producer(scene.bootstrap) as producer:
        pipeline = make_pipeline(scene.consumer_db, producer, scene.group, metrics)
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):

            async def all_applied_and_redelivered() -> bool:
                # The dead child stays a member of the group until its session times out
                # (10 s): only then are its partitions, and their uncommitted records, ours.
                redelivered = metrics.inbox_duplicates.labels("kit-test")._value.get()
                return (
                    len(await effect_counts(scene.consumer_db)) == EVENTS
                    and redelivered >= applied_before_kill
                )

            await eventually(all_applied_and_redelivered)
            await asyncio.sleep(1.0)  # room for any late redelivery to show up as a double

    assert await effect_counts(scene.consumer_db) == {event.order_id: 1 for event in events}
    assert metrics.inbox_duplicates.labels("kit-test")._value.get() >= applied_before_kill, (
        "every event whose offset was never committed was delivered again and skipped"
    )


async def test_records_that_are_not_valid_events_are_dead_lettered_and_the_consumer_goes_on(
    scene: Scene,
) -> None:
    good_before, good_after = sample_event("ord-good-1"), sample_event("ord-good-2")
    valid = encode(good_before, source="/oms/kit-test")
    template = encode(sample_event("ord-poison"), source="/oms/kit-test")
    poison = [
        (b"ord-poison", b"\x00\xffnot json at all", template.headers),
        (b"ord-poison", b'{"order_id": 42, "reservation_id": []}', template.headers),
        (b"ord-poison", template.value, []),
    ]
    after = encode(good_after, source="/oms/kit-test")
    await publish(
        scene.bootstrap,
        scene.topic,
        [(valid.key, valid.value, valid.headers), *poison, (after.key, after.value, after.headers)],
    )

    async with started_producer(scene.bootstrap) as producer:
        pipeline = make_pipeline(scene.consumer_db, producer, scene.group, Metrics())
        async with running_consumer(scene.bootstrap, scene.topic, scene.group, pipeline):

            async def both_good_applied() -> bool:
                return len(await effect_counts(scene.consumer_db)) == 2

            await eventually(both_good_applied)

    assert await effect_counts(scene.consumer_db) == {"ord-good-1": 1, "ord-good-2": 1}
    letters = await read_all(scene.bootstrap, dead_letter_topic(scene.group), expect=3)
    assert [letter.value for letter in letters] == [value for _key, value, _h in poison]
    for letter in letters:
        headers = dict(letter.headers)
        assert headers[dead_letters.ERROR_CLASS] == b"contracts.wire.InvalidEvent"
        assert headers[dead_letters.SOURCE_TOPIC] == scene.topic.encode()
        assert headers[dead_letters.ATTEMPTS] == b"1"
    messages = [dict(letter.headers)[dead_letters.ERROR_MESSAGE].decode() for letter in letters]
    assert "fails its contract" in messages[0]
    assert "fails its contract" in messages[1]
    assert "missing CloudEvents headers" in messages[2]


async def test_a_record_too_big_to_copy_is_dead_lettered_by_reference_and_the_consumer_goes_on(
    scene: Scene,
) -> None:
    small_letters_group = f"kit-test-small-{uuid.uuid4().hex[:8]}"
    await create_topics(
        scene.bootstrap,
        dead_letter_topic(small_letters_group),
        configs={"max.message.bytes": str(64 * 1024)},
    )
    template = encode(sample_event("ord-huge"), source="/oms/kit-test")
    huge_value = b"x" * (200 * 1024)
    good = encode(sample_event("ord-after-huge"), source="/oms/kit-test")
    await publish(
        scene.bootstrap,
        scene.topic,
        [(b"ord-huge", huge_value, template.headers), (good.key, good.value, good.headers)],
    )

    async with started_producer(scene.bootstrap) as producer:
        pipeline = make_pipeline(scene.consumer_db, producer, small_letters_group, Metrics())
        async with running_consumer(scene.bootstrap, scene.topic, small_letters_group, pipeline):

            async def good_applied() -> bool:
                return await effect_counts(scene.consumer_db) == {"ord-after-huge": 1}

            await eventually(good_applied)

    [letter] = await read_all(scene.bootstrap, dead_letter_topic(small_letters_group), expect=1)
    headers = dict(letter.headers)
    assert letter.value is None
    assert headers[dead_letters.VALUE_OMITTED] == str(len(huge_value)).encode()
    assert headers[dead_letters.SOURCE_TOPIC] == scene.topic.encode()


async def test_a_valid_event_on_a_topic_it_does_not_travel_on_is_dead_lettered_not_applied(
    scene: Scene,
) -> None:
    names = TopicNames(f"t{uuid.uuid4().hex[:10]}")
    order_topic, inventory_topic = (
        names.physical("oms.order.v1"),
        names.physical("oms.inventory.v1"),
    )
    await create_topics(scene.bootstrap, order_topic, inventory_topic)
    await create_topics(scene.bootstrap, dead_letter_topic(f"{scene.group}-topics"))
    misplaced = encode(sample_event("ord-misplaced"), source="/oms/intruder")
    rightful = encode(sample_event("ord-rightful"), source="/oms/order")
    await publish(
        scene.bootstrap, inventory_topic, [(misplaced.key, misplaced.value, misplaced.headers)]
    )
    await publish(scene.bootstrap, order_topic, [(rightful.key, rightful.value, rightful.headers)])

    group = f"{scene.group}-topics"
    async with started_producer(scene.bootstrap) as producer:
        pipeline = make_pipeline(scene.consumer_db, producer, group, Metrics(), names)
        async with running_consumer(
            scene.bootstrap, [order_topic, inventory_topic], group, pipeline
        ):

            async def rightful_applied() -> bool:
                return await effect_counts(scene.consumer_db) == {"ord-rightful": 1}

            await eventually(rightful_applied)
        [letter] = await read_all(scene.bootstrap, dead_letter_topic(group), expect=1)

    assert letter.value == misplaced.value
    message = dict(letter.headers)[dead_letters.ERROR_MESSAGE].decode()
    assert f"oms.OrderConfirmed.v1 does not travel on {inventory_topic}" in message
    assert await effect_counts(scene.consumer_db) == {"ord-rightful": 1}


class FirstSendFails(ResilientProducer):
    """A real producer whose first send fails as if the broker had gone away."""

    failed = False

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> asyncio.Future[Any]:
        if not self.failed:
            self.failed = True
            raise KafkaConnectionError("broker away")
        return await super().send(topic, value=value, key=key, headers=headers)


async def test_a_relay_interrupted_by_a_broker_failure_takes_its_leadership_back_and_publishes(
    scene: Scene,
) -> None:
    """The relay's leadership is a session-level advisory lock: the connection holding it
    must not go back to the pool alive when publishing fails, or the relay's next attempt
    (on another pooled connection) waits for a lock its own process holds, forever."""
    order_ids = [f"ord-interrupted-{n}" for n in range(EVENTS)]
    await record_events(scene, order_ids)
    producer = FirstSendFails(
        lambda: AIOKafkaProducer(
            bootstrap_servers=scene.bootstrap, acks="all", enable_idempotence=True
        )
    )
    await producer.start()
    # The relay's own pool, which nothing else churns: its next connection is another one.
    relay_db = create_async_engine(scene.producer_db_url)
    relay = make_relay(relay_db, producer, Metrics())
    running = asyncio.create_task(relay.run())
    try:

        async def all_sent() -> bool:
            return await unsent(scene.producer_db) == 0

        await eventually(all_sent, timeout=20)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await producer.stop()
        await relay_db.dispose()
    assert producer.failed
    on_topic = await read_all(scene.bootstrap, scene.topic, expect=EVENTS)
    assert len(on_topic) == EVENTS
