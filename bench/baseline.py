"""What the bare broker and database of this machine do, measured in the same run as the
system: raw aiokafka produce-and-consume throughput for the same number and size of
records, raw PostgreSQL insert-and-commit rate, and one consume → handle → publish hop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.analysis import LatencySummary, summarize

SENT_AT_HEADER = "bench_sent_at"
DELIVERY_CHUNK = 5_000
"""Deliveries awaited together: bounds the futures held while the producer runs ahead."""


@dataclass(frozen=True)
class KafkaThroughput:
    messages: int
    record_bytes: int
    seconds: float

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds


async def kafka_throughput(
    bootstrap: str, topic: str, *, messages: int, record_bytes: int, within_seconds: float = 900.0
) -> KafkaThroughput:
    """One producer (acks=all, idempotent) sends `messages` records of `record_bytes`
    as fast as it can while one consumer reads them; the time runs from the first send
    to the last record read."""
    key_count = 1024  # many keys, as many orders: records spread over every partition
    keys = [f"order-{number:05d}".encode() for number in range(key_count)]
    value = b"x" * max(record_bytes - len(keys[0]), 1)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        received = 0

        async def consume() -> None:
            nonlocal received
            while received < messages:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                received += sum(len(records) for records in batches.values())

        started = time.monotonic()
        reader = asyncio.create_task(consume())
        try:
            pending = []
            for number in range(messages):
                pending.append(
                    await producer.send(topic, value=value, key=keys[number % key_count])
                )
                if len(pending) >= DELIVERY_CHUNK:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
            await asyncio.wait_for(asyncio.shield(reader), within_seconds)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        return KafkaThroughput(messages, record_bytes, time.monotonic() - started)
    finally:
        await producer.stop()
        await consumer.stop()


@dataclass(frozen=True)
class PostgresCommits:
    connections: int
    commits: int
    seconds: float

    @property
    def commits_per_second(self) -> float:
        return self.commits / self.seconds


async def postgres_commits(
    database_url: str, *, connections: int = 4, seconds: float = 10.0, row_bytes: int = 200
) -> PostgresCommits:
    """`connections` clients each insert one row per transaction, committed (and so
    flushed to the WAL: the server runs with fsync and synchronous_commit on), for
    `seconds`."""
    setup = await asyncpg.connect(database_url)
    try:
        await setup.execute(
            "CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, payload text)"
        )
    finally:
        await setup.close()
    payload = "x" * row_bytes
    clients = [await asyncpg.connect(database_url) for _ in range(connections)]
    try:
        deadline = time.monotonic() + seconds

        async def insert_until_deadline(client: asyncpg.Connection) -> int:
            commits = 0
            while time.monotonic() < deadline:
                # Outside an explicit transaction each statement is its own transaction.
                await client.execute("INSERT INTO bench_rows (payload) VALUES ($1)", payload)
                commits += 1
            return commits

        started = time.monotonic()
        counts = await asyncio.gather(*(insert_until_deadline(client) for client in clients))
        return PostgresCommits(connections, sum(counts), time.monotonic() - started)
    finally:
        for client in clients:
            await client.close()


async def hop_latency(
    bootstrap: str,
    inbound: str,
    outbound: str,
    group: str,
    *,
    messages: int = 400,
    rate: float = 50.0,
    within_seconds: float = 120.0,
) -> LatencySummary | None:
    """A minimal service: consume a record, publish one in answer (acks=all, idempotent),
    commit the offset. The latency is from the inbound record's send to the answer's
    send, in milliseconds: what placed → reserved measures in the system, without the
    system's own work. Records arrive at a modest `rate`, so nothing queues."""
    consumer = AIOKafkaConsumer(
        inbound,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    latencies: list[float] = []
    try:

        async def republish() -> None:
            while len(latencies) < messages:
                record = await consumer.getone()
                sent_at = float(dict(record.headers)[SENT_AT_HEADER].decode())
                delivery = await producer.send(outbound, value=record.value, key=record.key)
                latencies.append((time.time() - sent_at) * 1000.0)
                await delivery
                await consumer.commit()

        async def send_inbound() -> None:
            started = time.monotonic()
            for number in range(messages):
                await asyncio.sleep(max(started + number / rate - time.monotonic(), 0.0))
                await producer.send(
                    inbound,
                    value=b"x" * 200,
                    key=f"order-{number}".encode(),
                    headers=[(SENT_AT_HEADER, repr(time.time()).encode())],
                )

        # The consumer must own its partitions before the first record is sent, or the
        # first latencies would include the group's join.
        await asyncio.wait_for(_assigned(consumer), within_seconds)
        await asyncio.wait_for(asyncio.gather(republish(), send_inbound()), within_seconds)
    finally:
        await producer.stop()
        await consumer.stop()
    return summarize(latencies)


async def _assigned(consumer: AIOKafkaConsumer) -> None:
    while not consumer.assignment():  # noqa: ASYNC110 - aiokafka offers no event for it
        await asyncio.sleep(0.05)
