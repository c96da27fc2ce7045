"""FastStream wiring for a service's consumer: manual acknowledgement, so an offset is
committed only after the event's transaction committed (FastStream's default commits
first, which loses an event when the process dies mid-handler).

Records are taken a batch at a time (whatever has arrived, up to `max_records`) and
applied in one transaction (see the pipeline). Offsets are committed a batch at a time
too, rather than one broker round trip per record: a process that dies before the commit
gets those records again, and the inbox skips them."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from services.kit.dead_letters import ConsumedRecord
from services.kit.logs import get_logger
from services.kit.pipeline import EventPipeline

log = get_logger(__name__)


class OffsetCommitter:
    """Commits the offsets of records whose transaction has committed: when `max_records`
    are waiting, or `max_delay_seconds` after the first of them, and on demand (before the
    consumer stops, when its partitions are revoked). Only offsets handed to `processed`
    are committed, never the consumer's fetch position, so a record still in its handler
    is never committed past."""

    def __init__(self, *, max_records: int = 200, max_delay_seconds: float = 0.2) -> None:
        self._max_records = max_records
        self._max_delay_seconds = max_delay_seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._waiting = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None

    async def processed(self, consumer: AIOKafkaConsumer, record: ConsumerRecord[Any, Any]) -> None:
        self._consumer = consumer
        self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        self._waiting += 1
        if self._waiting >= self._max_records:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later(), name="offset-commit")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._max_delay_seconds)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending or self._consumer is None:
                return
            offsets, self._pending, self._waiting = self._pending, {}, 0
            started = time.perf_counter()
            try:
                await self._consumer.commit(offsets)
            except KafkaError as error:
                # A partition taken away by a rebalance cannot be committed here: its new
                # owner consumes from the last commit and its inbox skips what was done.
                # Otherwise (the broker away) the next flush tries again.
                log.info("offset commit deferred", error=repr(error))
                assigned = self._consumer.assignment()
                for partition, offset in offsets.items():
                    if partition in assigned and partition not in self._pending:
                        self._pending[partition] = offset
                        self._waiting += 1
                return
            log.debug(
                "offsets committed", partitions=len(offsets), seconds=time.perf_counter() - started
            )

    def forget(self, partitions: Sequence[TopicPartition]) -> None:
        for partition in partitions:
            self._pending.pop(partition, None)


class _CommitBeforeRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was processed before partitions move to another member, so the new
    owner does not consume them again."""

    def __init__(self, committer: OffsetCommitter) -> None:
        self._committer = committer

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._committer.flush()
        self._committer.forget(revoked)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        return None


Batch = tuple[ConsumerRecord[bytes, bytes], ...]


async def _lenient_parse(
    records: Batch, parse: Callable[[Batch], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """FastStream decodes header values as strict UTF-8 and, on one bad byte, only logs
    the error: the batch would be skipped and later commits would pass it. Parse copies
    with the bad bytes replaced instead, keeping the untouched records as the raw message
    so a dead letter carries the original bytes."""
    try:
        return await parse(records)
    except UnicodeDecodeError:
        message = await parse(tuple(_readable(record) for record in records))
        message.raw_message = records
        return message


def _readable(record: ConsumerRecord[bytes, bytes]) -> ConsumerRecord[bytes, bytes]:
    readable = dataclasses.replace(
        record,
        headers=[
            (name, value.decode("utf-8", "replace").encode()) for name, value in record.headers
        ],
    )
    if hasattr(record, "consumer"):
        readable.consumer = record.consumer
    return readable


async def _raw_bodies(message: StreamMessage[object]) -> object:
    """Hand the handler the records' bytes untouched: parsing is the pipeline's job, so
    that bytes which are not JSON reach it (and its dead-letter topic) instead of failing
    inside the framework."""
    return message.body


def subscribe(
    broker: KafkaBroker,
    pipeline: EventPipeline,
    *,
    topics: Sequence[str],
    group_id: str,
    from_beginning: bool,
    committer: OffsetCommitter | None = None,
    max_batch: int = 100,
    batch_wait_ms: int = 10,
    title: str | None = None,
) -> OffsetCommitter:
    """Subscribes the pipeline; the returned committer must be flushed before the broker
    stops, or the last offsets are committed by nobody (and consumed again at restart).

    A batch is whatever has arrived, up to `max_batch` records; with nothing there the
    consumer waits up to `batch_wait_ms` for the first record."""
    committer = committer or OffsetCommitter()
    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest" if from_beginning else "latest",
        batch=True,
        max_records=max_batch,
        batch_timeout_ms=batch_wait_ms,
        parser=_lenient_parse,
        decoder=_raw_bodies,
        # A batch is a few short transactions; a stall this long means the process is stuck.
        max_poll_interval_ms=120_000,
        title=title or f"{group_id} consumer",
        listener=_CommitBeforeRebalance(committer),
    )

    @subscriber
    async def consume(bodies: Any) -> None:
        # Taken from the context, not injected: FastStream resolves an injected message
        # through a worker thread.
        message: KafkaMessage = broker.context.get_local("message")
        raw_records = message.raw_message
        assert isinstance(raw_records, tuple) and isinstance(message.consumer, AIOKafkaConsumer)
        consumer = message.consumer
        outcomes = await pipeline.process_batch(
            [
                ConsumedRecord(
                    topic=raw.topic,
                    partition=raw.partition,
                    offset=raw.offset,
                    key=raw.key,
                    value=body,
                    headers=list(raw.headers),
                )
                for raw, body in zip(raw_records, bodies, strict=True)
            ]
        )
        sought: set[TopicPartition] = set()
        for raw, outcome in zip(raw_records, outcomes, strict=True):
            partition = TopicPartition(raw.topic, raw.partition)
            if outcome.commits_offset:
                await committer.processed(consumer, raw)
            elif partition not in sought:
                # Back to the first record not applied: it and those after it are fetched
                # again, and nothing past it is committed.
                sought.add(partition)
                consumer.seek(partition, raw.offset)

    return committer
