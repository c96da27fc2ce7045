"""Dead letters and finished spans as the raw-record job stores them: the rows of one
fetched batch, written with one statement per table. A row already stored (a batch read
again after a crash) is left as it is: a dead letter is keyed by its position on its
topic, a span by its id."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

_ADD_DEAD_LETTERS = """
INSERT INTO ops_dead_letters (dead_letter_topic, dead_letter_partition, dead_letter_offset,
    consumer_group, key, value, value_omitted_bytes, headers, error_class, error_message,
    attempts, failed_at, source_topic, source_partition, source_offset, event_type, replays)
SELECT dead_letter_topic, dead_letter_partition, dead_letter_offset, consumer_group, key,
    value, value_omitted_bytes, headers::jsonb, error_class, error_message, attempts,
    failed_at, source_topic, source_partition, source_offset, event_type, 0
FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::bytea[], $6::bytea[],
        $7::bigint[], $8::text[], $9::text[], $10::text[], $11::int[], $12::timestamptz[],
        $13::text[], $14::int[], $15::bigint[], $16::text[])
    AS letter(dead_letter_topic, dead_letter_partition, dead_letter_offset, consumer_group,
        key, value, value_omitted_bytes, headers, error_class, error_message, attempts,
        failed_at, source_topic, source_partition, source_offset, event_type)
ON CONFLICT ON CONSTRAINT ops_dead_letters_position DO NOTHING
"""
_ADD_SPANS = """
INSERT INTO ops_spans (span_id, trace_id, parent_span_id, name, service, kind, start_time,
    end_time, status, attributes, order_id)
SELECT span_id, trace_id, parent_span_id, name, service, kind, start_time, end_time, status,
    attributes::jsonb, order_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[])
    AS span(span_id, trace_id, parent_span_id, name, service, kind, start_time, end_time,
        status, attributes, order_id)
ON CONFLICT (span_id) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    dead_letter_topic: str
    dead_letter_partition: int
    dead_letter_offset: int
    consumer_group: str
    key: bytes | None
    value: bytes | None
    value_omitted_bytes: int | None
    headers: list[tuple[str, str]]
    error_class: str | None
    error_message: str | None
    attempts: int | None
    failed_at: datetime | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    event_type: str | None


@dataclass(frozen=True, slots=True)
class SpanRow:
    span_id: str
    trace_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_time: datetime
    end_time: datetime
    status: str
    attributes: dict[str, str]
    order_id: str | None


async def store(
    connection: asyncpg.Connection, letters: Sequence[DeadLetterRow], spans: Sequence[SpanRow]
) -> None:
    """Both tables in one transaction, a statement each (none for an empty one)."""
    async with connection.transaction():
        if letters:
            await connection.execute(
                _ADD_DEAD_LETTERS,
                [letter.dead_letter_topic for letter in letters],
                [letter.dead_letter_partition for letter in letters],
                [letter.dead_letter_offset for letter in letters],
                [letter.consumer_group for letter in letters],
                [letter.key for letter in letters],
                [letter.value for letter in letters],
                [letter.value_omitted_bytes for letter in letters],
                [json.dumps(letter.headers) for letter in letters],
                [letter.error_class for letter in letters],
                [letter.error_message for letter in letters],
                [letter.attempts for letter in letters],
                [letter.failed_at for letter in letters],
                [letter.source_topic for letter in letters],
                [letter.source_partition for letter in letters],
                [letter.source_offset for letter in letters],
                [letter.event_type for letter in letters],
            )
        if spans:
            await connection.execute(
                _ADD_SPANS,
                [span.span_id for span in spans],
                [span.trace_id for span in spans],
                [span.parent_span_id for span in spans],
                [span.name for span in spans],
                [span.service for span in spans],
                [span.kind for span in spans],
                [span.start_time for span in spans],
                [span.end_time for span in spans],
                [span.status for span in spans],
                [json.dumps(span.attributes) for span in spans],
                [span.order_id for span in spans],
            )
