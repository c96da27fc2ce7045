"""The mean record size of a phase, from a sample of each partition between two readings
of the end offsets."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.traffic import mean_record_bytes
from tests.infrastructure import Infrastructure
from tests.kafka_tools import create_topics, unique_topic


async def _send(bootstrap: str, topic: str, partition: int, count: int, size: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for _ in range(count):
            await producer.send_and_wait(topic, value=b"x" * size, partition=partition)
    finally:
        await producer.stop()


@pytest.mark.integration
async def test_each_partition_weighs_by_its_records_from_the_first_reading_on(
    infrastructure: Infrastructure,
) -> None:
    bootstrap = infrastructure.kafka_bootstrap_servers
    topic = unique_topic("bench-sizes")
    await create_topics(bootstrap, topic, partitions=2)
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    try:
        # Before the phase: five large records that must not count.
        await _send(bootstrap, topic, 0, 5, 5_000)
        await _send(bootstrap, topic, 0, 30, 100)
        await _send(bootstrap, topic, 1, 10, 500)
        mean = await mean_record_bytes(
            bootstrap, {first: 5}, {first: 35, second: 10}, per_partition=4
        )
        # 30 records of 100 bytes and 10 of 500, from four of each partition.
        assert mean == pytest.approx(200.0)
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


async def test_a_phase_without_records_has_no_mean_size() -> None:
    partition = TopicPartition("ns.oms.order.v1", 0)
    assert await mean_record_bytes("127.0.0.1:1", {partition: 7}, {partition: 7}) is None
