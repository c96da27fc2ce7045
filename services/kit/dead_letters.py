"""Dead letters: a record that cannot be parsed or applied is copied, untouched, to its
consumer group's dead-letter topic with the failure in headers, and the consumer moves on.
Replaying one publishes the original record back to its topic; the inbox makes a second
replay harmless."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from contracts.catalogue import dead_letter_topic
from services.kit.kafka import ResilientProducer

HEADER_PREFIX = "dlq_"
ERROR_CLASS = "dlq_error_class"
ERROR_MESSAGE = "dlq_error_message"
ATTEMPTS = "dlq_attempts"
FAILED_AT = "dlq_failed_at"
SOURCE_TOPIC = "dlq_topic"
SOURCE_PARTITION = "dlq_partition"
SOURCE_OFFSET = "dlq_offset"
CONSUMER_GROUP = "dlq_consumer_group"

VALUE_OMITTED = "dlq_value_omitted_bytes"

MAX_ERROR_MESSAGE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """A Kafka record as consumed, before any parsing: what a dead letter preserves."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]


def original_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The record's headers without any dead-letter annotations of an earlier failure."""
    return [(name, value) for name, value in headers if not name.startswith(HEADER_PREFIX)]


class DeadLetterPublisher:
    def __init__(
        self, producer: ResilientProducer, consumer_group: str, *, topic: str | None = None
    ) -> None:
        self._producer = producer
        self._group = consumer_group
        self.topic = topic or dead_letter_topic(consumer_group)

    async def publish(self, record: ConsumedRecord, error: BaseException, attempts: int) -> None:
        """Returns once the broker has the dead letter (acks=all): only then may the
        consumer commit past the original."""
        message = f"{type(error).__name__}: {error}".encode()[:MAX_ERROR_MESSAGE_BYTES]
        headers = [
            *original_headers(record.headers),
            (ERROR_CLASS, f"{type(error).__module__}.{type(error).__qualname__}".encode()),
            (ERROR_MESSAGE, message),
            (ATTEMPTS, str(attempts).encode()),
            (FAILED_AT, datetime.now(UTC).isoformat().encode()),
            (SOURCE_TOPIC, record.topic.encode()),
            (SOURCE_PARTITION, str(record.partition).encode()),
            (SOURCE_OFFSET, str(record.offset).encode()),
            (CONSUMER_GROUP, self._group.encode()),
        ]
        try:
            await self._producer.send_and_wait(
                self.topic, value=record.value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # Too big to copy (the broker took it, but not with our headers, or the topic
            # allows less): the dead letter points at the original by topic, partition
            # and offset instead. Waiting would block the partition for ever.
            headers.append((VALUE_OMITTED, str(len(record.value)).encode()))
            await self._producer.send_and_wait(
                self.topic, value=None, key=record.key, headers=headers
            )
        except KafkaError:
            await self._producer.recreate()  # the caller retries on a fresh producer
            raise
