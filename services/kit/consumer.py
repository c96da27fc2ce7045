"""FastStream wiring for a service's consumer: manual acknowledgement, so the offset is
committed only after the event's transaction committed (FastStream's default commits
first, which loses an event when the process dies mid-handler)."""

from __future__ import annotations

from collections.abc import Sequence

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from services.kit.dead_letters import ConsumedRecord
from services.kit.pipeline import EventPipeline


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
