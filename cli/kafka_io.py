"""The CLI's Kafka side: reading dead-letter topics (and, for a dead letter whose value
was too large to copy, the original record) and publishing records back for replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from cli.dlq import DeadLetter
from cli.parsing import DeadLetterId
from cli.session import CliFailure, ExitCode, Settings
from contracts.catalogue import dead_letter_topic

CONNECT_TIMEOUT_SECONDS = 15.0
READ_TIMEOUT_SECONDS = 30.0
MAX_REPLAY_BYTES = 16 * 1024 * 1024


def dead_letter_topic_of(settings: Settings, group: str) -> str:
    return settings.topic(dead_letter_topic(group))


def _unreachable(settings: Settings, error: BaseException) -> CliFailure:
    return CliFailure(
        ExitCode.UNREACHABLE,
        f"cannot use Kafka at {settings.kafka_bootstrap_servers}: {type(error).__name__}: {error}",
        detail={"kafka_bootstrap_servers": settings.kafka_bootstrap_servers},
    )


@dataclass
class _Reader:
    consumer: AIOKafkaConsumer
    admin: AIOKafkaAdminClient


@asynccontextmanager
async def _reader(settings: Settings) -> AsyncIterator[_Reader]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,  # an operator's read must not move any service's offsets
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(CONNECT_TIMEOUT_SECONDS * 1000),
    )
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(CONNECT_TIMEOUT_SECONDS * 1000),
    )
    try:
        await asyncio.wait_for(consumer.start(), CONNECT_TIMEOUT_SECONDS)
        await asyncio.wait_for(admin.start(), CONNECT_TIMEOUT_SECONDS)
    except (KafkaError, OSError, TimeoutError) as error:
        await consumer.stop()
        await admin.close()
        raise _unreachable(settings, error) from None
    try:
        yield _Reader(consumer, admin)
    except (KafkaError, OSError, TimeoutError) as error:
        raise _unreachable(settings, error) from None
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(reader: _Reader, topic: str) -> list[TopicPartition]:
    """The topic's partitions; none when it does not exist. Described by the admin API,
    which, unlike a consumer's metadata request, never creates a missing topic."""
    [description] = await reader.admin.describe_topics([topic])
    if description.get("error_code") != 0:
        return []
    return sorted(
        TopicPartition(topic, partition["partition"]) for partition in description["partitions"]
    )


async def _read_ranges(
    consumer: AIOKafkaConsumer, ranges: dict[TopicPartition, tuple[int, int]]
) -> list[Any]:
    """Every record in [start, end) of each partition."""
    wanted = {tp: bounds for tp, bounds in ranges.items() if bounds[0] < bounds[1]}
    if not wanted:
        return []
    consumer.assign(list(wanted))
    for tp, (start, _end) in wanted.items():
        consumer.seek(tp, start)
    records: list[Any] = []
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    pending = set(wanted)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {sorted(str(tp) for tp in pending)} took too long")
        batches = await consumer.getmany(*pending, timeout_ms=500)
        for tp, batch in batches.items():
            end = wanted[tp][1]
            records.extend(record for record in batch if record.offset < end)
        for tp in list(pending):
            if await consumer.position(tp) >= wanted[tp][1]:
                pending.discard(tp)
    return records


def _letter(group: str, record: Any) -> DeadLetter:
    return DeadLetter(
        id=DeadLetterId(group, record.partition, record.offset),
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
        timestamp_ms=record.timestamp,
    )


async def read_dead_letters(
    settings: Settings, groups: Iterable[str], *, limit: int | None = None
) -> list[DeadLetter]:
    """The dead letters of the groups, oldest first; with `limit`, only the newest."""
    letters: list[DeadLetter] = []
    async with _reader(settings) as reader:
        consumer = reader.consumer
        for group in groups:
            partitions = await _partitions(reader, dead_letter_topic_of(settings, group))
            if not partitions:
                continue
            beginnings = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            ranges = {
                tp: (
                    beginnings[tp] if limit is None else max(beginnings[tp], ends[tp] - limit),
                    ends[tp],
                )
                for tp in partitions
            }
            letters.extend(
                _letter(group, record) for record in await _read_ranges(consumer, ranges)
            )
    letters.sort(key=lambda letter: (letter.timestamp_ms or 0, letter.id))
    return letters if limit is None else letters[-limit:]


async def _record_at(reader: _Reader, topic: str, partition: int, offset: int) -> Any:
    tp = TopicPartition(topic, partition)
    if tp not in await _partitions(reader, topic):
        return None
    consumer = reader.consumer
    beginning = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    if not beginning <= offset < end:
        return None
    found = [
        record
        for record in await _read_ranges(consumer, {tp: (offset, offset + 1)})
        if record.offset == offset
    ]
    return found[0] if found else None


async def fetch_dead_letters(
    settings: Settings, ids: Sequence[DeadLetterId]
) -> dict[DeadLetterId, DeadLetter | None]:
    """Each dead letter by id; None for an id that names no record (any more)."""
    found: dict[DeadLetterId, DeadLetter | None] = {}
    async with _reader(settings) as reader:
        for letter_id in ids:
            record = await _record_at(
                reader,
                dead_letter_topic_of(settings, letter_id.group),
                letter_id.partition,
                letter_id.offset,
            )
            found[letter_id] = None if record is None else _letter(letter_id.group, record)
    return found


@dataclass(frozen=True)
class ReplayResult:
    letter_id: DeadLetterId
    topic: str | None
    partition: int | None = None
    offset: int | None = None
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.letter_id),
            "replayed": self.error is None,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "error": self.error,
        }


async def replay(
    settings: Settings,
    letters: Sequence[DeadLetter],
    on_done: Callable[[ReplayResult], None] = lambda _result: None,
) -> list[ReplayResult]:
    """Publishes each dead letter's original record (key, value, headers without `dlq_*`)
    back to its source topic and partition, with an idempotent producer and acks=all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_REPLAY_BYTES,
        request_timeout_ms=int(CONNECT_TIMEOUT_SECONDS * 1000),
    )
    try:
        await asyncio.wait_for(producer.start(), CONNECT_TIMEOUT_SECONDS)
    except (KafkaError, OSError, TimeoutError) as error:
        await producer.stop()
        raise _unreachable(settings, error) from None
    results: list[ReplayResult] = []
    try:
        originals = await _omitted_values(settings, letters)
        for letter in letters:
            result = await _replay_one(producer, letter, originals.get(letter.id))
            results.append(result)
            on_done(result)
    finally:
        await producer.stop()
    return results


async def _omitted_values(
    settings: Settings, letters: Sequence[DeadLetter]
) -> dict[DeadLetterId, bytes]:
    """The original values of dead letters too large to have been copied, read from the
    source topic at the recorded partition and offset."""
    wanted = [
        letter
        for letter in letters
        if letter.value is None
        and letter.source_topic is not None
        and letter.source_partition is not None
        and letter.source_offset is not None
    ]
    if not wanted:
        return {}
    values: dict[DeadLetterId, bytes] = {}
    async with _reader(settings) as reader:
        for letter in wanted:
            assert letter.source_topic is not None
            assert letter.source_partition is not None and letter.source_offset is not None
            record = await _record_at(
                reader, letter.source_topic, letter.source_partition, letter.source_offset
            )
            if record is not None and record.value is not None:
                values[letter.id] = record.value
    return values


async def _replay_one(
    producer: AIOKafkaProducer, letter: DeadLetter, original_value: bytes | None
) -> ReplayResult:
    topic = letter.source_topic
    if topic is None:
        return ReplayResult(
            letter.id,
            None,
            error="the dead letter names no source topic (no dlq_topic header)",
            exit_code=ExitCode.NOT_FOUND,
        )
    value = letter.value if letter.value is not None else original_value
    if value is None:
        return ReplayResult(
            letter.id,
            topic,
            error=(
                f"the value was too large to copy and the original is gone from {topic} "
                f"partition {letter.source_partition} offset {letter.source_offset}"
            ),
            exit_code=ExitCode.NOT_FOUND,
        )
    try:
        metadata = await producer.send_and_wait(
            topic,
            value=value,
            key=letter.key,
            partition=letter.source_partition,
            headers=letter.original_headers(),
        )
    except KafkaError as error:
        return ReplayResult(
            letter.id,
            topic,
            error=f"{type(error).__name__}: {error}",
            exit_code=ExitCode.UNREACHABLE,
        )
    return ReplayResult(letter.id, topic, metadata.partition, metadata.offset)
