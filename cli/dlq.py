"""Reading dead letters: the `dlq_*` headers the consumers add (see the services' kit,
`dead_letters.py`; tests check the names here still match), and safe previews of keys
and values that may be anything, including bytes that are neither UTF-8 nor JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cli.parsing import DeadLetterId

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

EVENT_ID = "ce_id"
EVENT_TYPE = "ce_type"

PREVIEW_CHARACTERS = 2000

Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True)
class DeadLetter:
    id: DeadLetterId
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int | None = None

    def header(self, name: str) -> str | None:
        for header_name, raw in self.headers:
            if header_name == name:
                return None if raw is None else raw.decode("utf-8", errors="replace")
        return None

    def _header_int(self, name: str) -> int | None:
        text = self.header(name)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    @property
    def error_class(self) -> str | None:
        return self.header(ERROR_CLASS)

    @property
    def error_message(self) -> str | None:
        return self.header(ERROR_MESSAGE)

    @property
    def attempts(self) -> int | None:
        return self._header_int(ATTEMPTS)

    @property
    def failed_at(self) -> str | None:
        return self.header(FAILED_AT) or _timestamp(self.timestamp_ms)

    @property
    def source_topic(self) -> str | None:
        return self.header(SOURCE_TOPIC)

    @property
    def source_partition(self) -> int | None:
        return self._header_int(SOURCE_PARTITION)

    @property
    def source_offset(self) -> int | None:
        return self._header_int(SOURCE_OFFSET)

    @property
    def consumer_group(self) -> str | None:
        return self.header(CONSUMER_GROUP)

    @property
    def value_omitted_bytes(self) -> int | None:
        """Set when the value was too large to copy: replay fetches it from the source."""
        return self._header_int(VALUE_OMITTED)

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers to replay with: the record's own, without any `dlq_*` annotation."""
        return [
            (name, raw if raw is not None else b"")
            for name, raw in self.headers
            if not name.startswith(HEADER_PREFIX)
        ]

    def summary(self) -> dict[str, Any]:
        """The stable JSON shape of `oms dead-letters list --json`."""
        return {
            "id": str(self.id),
            "group": self.id.group,
            "partition": self.id.partition,
            "offset": self.id.offset,
            "failed_at": self.failed_at,
            "error_class": self.error_class,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "consumer_group": self.consumer_group,
            "source": {
                "topic": self.source_topic,
                "partition": self.source_partition,
                "offset": self.source_offset,
            },
            "event_type": self.header(EVENT_TYPE),
            "event_id": self.header(EVENT_ID),
            "key": None if self.key is None else escaped_preview(self.key),
            "value_bytes": None if self.value is None else len(self.value),
            "value_omitted_bytes": self.value_omitted_bytes,
        }

    def details(self) -> dict[str, Any]:
        """The stable JSON shape of `oms dead-letters show --json`: the summary, every
        header, and the value as JSON when it parses, else as an escaped preview."""
        parsed, is_json = parse_json(self.value)
        return {
            **self.summary(),
            "headers": [
                {"name": name, "value": None if raw is None else escaped_preview(raw)}
                for name, raw in self.headers
            ],
            "value_format": "omitted" if self.value is None else ("json" if is_json else "bytes"),
            "value": parsed
            if is_json
            else (None if self.value is None else escaped_preview(self.value)),
        }


def _timestamp(milliseconds: int | None) -> str | None:
    if milliseconds is None or milliseconds < 0:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat()


def parse_json(raw: bytes | None) -> tuple[Any, bool]:
    """(the parsed document, True) when `raw` is JSON, else (None, False)."""
    if raw is None:
        return None, False
    try:
        return json.loads(raw), True
    except (UnicodeDecodeError, ValueError):
        return None, False


def escaped_preview(raw: bytes, limit: int = PREVIEW_CHARACTERS) -> str:
    """Printable text for any bytes: invalid UTF-8 as `\\xNN`, control characters
    escaped (so nothing can move the terminal's cursor or forge output lines), and
    anything longer than `limit` cut with the total size noted."""
    text = raw.decode("utf-8", errors="backslashreplace")
    escaped = "".join(_printable(character) for character in text[:limit])
    if len(text) > limit:
        escaped += f"… ({len(raw)} bytes in all)"
    return escaped


def _printable(character: str) -> str:
    if character.isprintable():
        return character
    return character.encode("unicode_escape").decode("ascii")
