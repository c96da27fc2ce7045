"""A service's consumer: an aiokafka consumer of its group, fetching what has arrived (up
to `max_batch` records), handing it to the pipeline and committing offsets only after the
records' transaction committed (a process that dies before the commit gets them again,
and the inbox skips them). Offsets are committed a batch at a time, not one broker round
trip per record.

It runs on aiokafka directly: the pipeline does the reading, routing and dead-lettering,
so a framework's per-message machinery (dependency injection, middlewares, in-flight
accounting) would only add cost, and owning the loop lets the service see and handle its
consumer's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from services.kit.dead_letters import ConsumedRecord
from services.kit.logs import get_logger
from services.kit.pipeline import EventPipeline

log = get_logger(__name__)

RETRY_SECONDS = 1.0
"""Pause after a fetch or a batch failed unexpectedly, before trying again."""


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


class ConsumerLoop:
    """One consumer of a group, applying what it fetches through the pipeline.

    `batch_wait_ms` is how long a fetch waits when nothing has arrived: a fetch returns as
    soon as records are there, so a long wait costs no latency, only an idle consumer's
    wake-ups. What one fetch brings is applied in up to `lanes` batches of disjoint
    partitions at the same time; the next fetch waits for them all."""

    def __init__(
        self,
        pipeline: EventPipeline,
        *,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str,
        client_id: str,
        from_beginning: bool,
        max_batch: int = 100,
        batch_wait_ms: int = 1000,
        fetch_min_bytes: int = 1,
        fetch_wait_ms: int = 500,
        lanes: int = 1,
    ) -> None:
        self._pipeline = pipeline
        self._topics = list(topics)
        self._client_id = client_id
        self._lanes = lanes
        self._max_batch = max_batch
        self._batch_wait_ms = batch_wait_ms
        self.committer = OffsetCommitter()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers.split(","),
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            # A batch is a few short transactions; a stall this long means the process is stuck.
            max_poll_interval_ms=120_000,
            fetch_min_bytes=fetch_min_bytes,
            fetch_max_wait_ms=fetch_wait_ms,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=_CommitBeforeRebalance(self.committer))
        self._task = asyncio.create_task(self._run(), name=f"consumer {self._client_id}")

    async def stop(self) -> None:
        """Stops fetching, commits what was applied, leaves the group."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # what is not committed is consumed again
            await self.committer.flush()
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            try:
                fetched = await self._consumer.getmany(
                    timeout_ms=self._batch_wait_ms, max_records=self._max_batch
                )
            except KafkaError as error:
                log.warning("fetch failed; trying again", error=repr(error))
                await asyncio.sleep(RETRY_SECONDS)
                continue
            lanes = split_into_lanes(fetched, self._lanes)
            if len(lanes) == 1:
                await self._apply(lanes[0])
            elif lanes:
                # Disjoint partitions in transactions of their own at the same time: one
                # batch's commit latency does not hold the other back.
                await asyncio.gather(*(self._apply(lane) for lane in lanes))

    async def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        consumer = self._consumer
        try:
            outcomes = await self._pipeline.process_batch(
                [
                    ConsumedRecord(
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value if record.value is not None else b"",
                        headers=list(record.headers),
                    )
                    for record in records
                ]
            )
        except Exception as error:
            # A bug or an outage the pipeline did not absorb: nothing of the batch is
            # committed, and it is fetched again after a pause.
            log.error("batch not applied; fetching it again", error=repr(error))
            for partition, first in _first_offsets(records).items():
                consumer.seek(partition, first)
            await asyncio.sleep(RETRY_SECONDS)
            return
        sought: set[TopicPartition] = set()
        for record, outcome in zip(records, outcomes, strict=True):
            partition = TopicPartition(record.topic, record.partition)
            if partition in sought:
                continue
            if outcome.commits_offset:
                await self.committer.processed(consumer, record)
            else:
                # Back to the first record not applied: it and those after it are fetched
                # again, and nothing past it is committed.
                sought.add(partition)
                consumer.seek(partition, record.offset)


def split_into_lanes(
    fetched: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]], lanes: int
) -> list[list[ConsumerRecord[bytes, bytes]]]:
    """The fetched records split into at most `lanes` batches of whole partitions, each
    partition's records in order, the batches as even as partitions allow."""
    shares: list[list[ConsumerRecord[bytes, bytes]]] = [[] for _ in range(max(1, lanes))]
    for records in sorted(fetched.values(), key=len, reverse=True):
        if records:
            min(shares, key=len).extend(records)
    return [share for share in shares if share]


def _first_offsets(records: Sequence[ConsumerRecord[Any, Any]]) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for record in records:
        first.setdefault(TopicPartition(record.topic, record.partition), record.offset)
    return first
