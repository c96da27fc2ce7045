"""What a phase's records weigh: the mean size of a record over every topic of the run,
from a sample of each partition's records between two readings of its end offsets.
The observer reads only the records that show an order's steps, and only their headers;
a sample is enough to size the baseline's records, at a small share of the cost of
reading them all."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bench.analysis import weighted_mean

SAMPLE_PER_PARTITION = 200
SAMPLE_WITHIN_SECONDS = 60.0


def record_bytes(record: ConsumerRecord[bytes, bytes]) -> int:
    """Key, value and headers (names and values): what the producer hands the broker,
    less the framing."""
    size = len(record.key or b"") + len(record.value or b"")
    return size + sum(len(name) + len(value) for name, value in record.headers)


async def mean_record_bytes(
    bootstrap: str,
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    *,
    per_partition: int = SAMPLE_PER_PARTITION,
    within_seconds: float = SAMPLE_WITHIN_SECONDS,
) -> float | None:
    """The mean size of the records from `starts` to `ends` (offsets per partition; a
    partition missing from `starts` counts from 0): the first `per_partition` of each
    partition sampled, each partition's mean weighted by its number of records. None
    when there are none."""
    counts = {tp: end - starts.get(tp, 0) for tp, end in ends.items() if end > starts.get(tp, 0)}
    if not counts:
        return None
    wanted = {tp: min(per_partition, count) for tp, count in counts.items()}
    sizes: dict[TopicPartition, list[int]] = {tp: [] for tp in counts}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(counts))
        for tp in counts:
            consumer.seek(tp, starts.get(tp, 0))
        deadline = time.monotonic() + within_seconds
        while consumer.assignment() - consumer.paused() and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                sampled = sizes[tp]
                room = wanted[tp] - len(sampled)
                sampled.extend(record_bytes(record) for record in records[:room])
                if len(sampled) >= wanted[tp]:
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return weighted_mean(
        (counts[tp], sum(sampled) / len(sampled)) for tp, sampled in sizes.items() if sampled
    )
