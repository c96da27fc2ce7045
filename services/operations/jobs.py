"""The operations view's background jobs: the consumer of the records that are not
contract events (dead letters and finished spans), and the consumer-lag snapshot read from
Kafka's own committed offsets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.catalogue import CONSUMER_GROUPS, SPANS_TOPIC
from services.kit.logs import get_logger
from services.kit.runtime import ServiceRuntime
from services.operations import db, domain, raw_rows, service
from services.operations.raw_rows import DeadLetterRow, SpanRow

log = get_logger(__name__)

RAW_GROUP_SUFFIX = "-raw"
"""The dead-letter and span consumer's group is the service's group plus this suffix
(namespaced like every group), so a rebuild under another group reads everything again."""

Job = Callable[[ServiceRuntime], Coroutine[Any, Any, None]]


def raw_topics(runtime: ServiceRuntime) -> dict[str, str | None]:
    """Physical topic → the consumer group whose dead letters it holds (None: spans)."""
    names = runtime.topic_names
    topics: dict[str, str | None] = {names.dead_letters(group): group for group in CONSUMER_GROUPS}
    topics[names.physical(SPANS_TOPIC)] = None
    return topics


def raw_records(*, batch_records: int, retry_seconds: float) -> Job:
    async def consume_raw_records(runtime: ServiceRuntime) -> None:
        # The consumer's connections (asyncpg, custom plans for the array statements):
        # made before the background jobs start, as this service consumes topics.
        pool = runtime.pool
        assert pool is not None, "the operations view consumes every catalogue topic"
        topics = raw_topics(runtime)
        while True:
            consumer = AIOKafkaConsumer(
                *topics,
                bootstrap_servers=runtime.settings.kafka_bootstrap_servers,
                group_id=runtime.topic_names.consumer_group(
                    runtime.settings.group_id + RAW_GROUP_SUFFIX
                ),
                client_id="oms-operations-raw",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=batch_records,
            )
            try:
                await consumer.start()
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=batch_records)
                    if not batches:
                        continue
                    records = [record for batch in batches.values() for record in batch]
                    async with pool.acquire() as connection:
                        await store_raw(
                            connection, topics, records, own_service=runtime.definition.name
                        )
                    # Committed only after the rows are stored: a crash re-reads, and the
                    # rows' own keys make a second store a no-op.
                    await consumer.commit()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error("dead-letter and span consumer failed; restarting", error=repr(error))
                await asyncio.sleep(retry_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    return consume_raw_records


async def store_raw(
    connection: asyncpg.Connection,
    topics: Mapping[str, str | None],
    records: Sequence[ConsumerRecord[bytes, bytes]],
    *,
    own_service: str,
) -> None:
    """A fetched batch of dead letters and spans, stored with a statement per table."""
    letters: list[DeadLetterRow] = []
    # One span may come twice (a re-read batch): one row per id.
    spans: dict[str, SpanRow] = {}
    for record in records:
        group = topics.get(record.topic)
        if group is not None:
            raw = service.RawRecord(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=list(record.headers),
            )
            letters.append(service.dead_letter_row(raw, group))
            continue
        try:
            span = service.span_document(record.value)
            # This view's own spans (projecting each event) would double every order's
            # trace with bookkeeping of the read side: the waterfall shows the flow. The
            # view does not publish them; any that arrive (from a replica of an older
            # release, say) are dropped before their fields are checked and converted.
            if service.span_service(span) == own_service:
                continue
            row = service.span_row(span)
        except service.InvalidSpan as error:
            log.warning("invalid span skipped", offset=record.offset, error=str(error))
            continue
        spans[row.span_id] = row
    if letters or spans:
        await raw_rows.store(connection, letters, list(spans.values()))


def consumer_lag(*, interval_seconds: float) -> Job:
    async def refresh_consumer_lag(runtime: ServiceRuntime) -> None:
        while True:
            try:
                rows = await read_lag(runtime)
                async with runtime.engine.begin() as connection:
                    await db.replace_lag(connection, rows, datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("consumer lag not refreshed", error=repr(error))
            await asyncio.sleep(interval_seconds)

    return refresh_consumer_lag


async def read_lag(runtime: ServiceRuntime) -> list[dict[str, Any]]:
    """Per consumer group of this system (its namespace): committed offsets against the
    partitions' end offsets, as Kafka itself records them."""
    bootstrap = runtime.settings.kafka_bootstrap_servers
    namespace = runtime.topic_names.namespace
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="oms-operations-lag")
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        groups = [group for group, _protocol in await admin.list_consumer_groups()]
        ours = sorted(
            group for group in groups if not namespace or group.startswith(f"{namespace}.")
        )
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in ours:
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {
                partition: meta.offset for partition, meta in offsets.items() if meta.offset >= 0
            }
        every_partition = {partition for offsets in committed.values() for partition in offsets}
        ends = await reader.end_offsets(list(every_partition)) if every_partition else {}
    finally:
        await reader.stop()
        await admin.close()
    rows = []
    for group in ours:
        partitions = [
            domain.PartitionOffsets(tp.topic, tp.partition, offset, ends.get(tp, offset))
            for tp, offset in sorted(committed[group].items())
        ]
        rows.append(
            {
                "consumer_group": runtime.topic_names.logical(group),
                "lag": domain.group_lag(partitions),
                "partitions": [
                    {
                        "topic": runtime.topic_names.logical(part.topic),
                        "partition": part.partition,
                        "committed": part.committed,
                        "end": part.end,
                        "lag": part.lag,
                    }
                    for part in partitions
                ],
            }
        )
    return rows


async def fetch_record_value(
    bootstrap: str, topic: str, partition: int, offset: int, wait_seconds: float = 10.0
) -> bytes | None:
    """The value of one record, read by position (a dead letter too large to copy)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        where = TopicPartition(topic, partition)
        consumer.assign([where])
        first = (await consumer.beginning_offsets([where])).get(where, 0)
        end = (await consumer.end_offsets([where])).get(where, 0)
        if not first <= offset < end:
            return None  # deleted by retention, or never there
        consumer.seek(where, offset)
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(where, timeout_ms=500, max_records=1)
            for record in batches.get(where, []):
                return record.value if record.offset == offset else None
        return None
    finally:
        await consumer.stop()
