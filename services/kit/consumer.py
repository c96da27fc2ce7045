"""FastStream wiring for a service's consumer: manual acknowledgement, so the offset is
committed only after the event's transaction committed (FastStream's default commits
first, which loses an event when the process dies mid-handler)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from services.kit.dead_letters import ConsumedRecord
from services.kit.pipeline import EventPipeline


async def _lenient_parse(
    record: ConsumerRecord[bytes, bytes],
    parse: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream decodes header values as strict UTF-8 and, on one bad byte, only logs
    the error: the record would be skipped and later commits would pass it. Parse a copy
    with the bad bytes replaced instead, keeping the untouched record as the raw message
    so its dead letter carries the original bytes."""
    try:
        return await parse(record)
    except UnicodeDecodeError:
        readable = dataclasses.replace(
            record,
            headers=[
                (name, value.decode("utf-8", "replace").encode()) for name, value in record.headers
            ],
        )
        if hasattr(record, "consumer"):
            readable.consumer = record.consumer
        message = await parse(readable)
        message.raw_message = record
        return message


async def _raw_body(message: StreamMessage[object]) -> bytes:
    """Hand the handler the record's bytes untouched: parsing is the pipeline's job, so
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
) -> None:
    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest" if from_beginning else "latest",
        parser=_lenient_parse,
        decoder=_raw_body,
        # Handlers are short transactions; a stall this long means the process is stuck.
        max_poll_interval_ms=120_000,
        title=f"{group_id} consumer",
    )

    @subscriber
    async def consume(body: bytes, message: KafkaMessage) -> None:
        raw = message.raw_message
        assert not isinstance(raw, tuple)
        record = ConsumedRecord(
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=raw.key,
            value=body,
            headers=list(raw.headers),
        )
        outcome = await pipeline.process(record)
        if outcome.commits_offset:
            await message.ack()
        else:
            # Seek back to this record: it is fetched again, nothing after it is committed.
            await message.nack()
