"""How an event travels on Kafka: the CloudEvents Kafka binding in binary mode.

The record value is the event's JSON; its attributes travel as `ce_*` headers; the record
key is the event's partition key (the order id). Correlation and causation ids are
CloudEvents extension attributes, so they follow the same `ce_` naming.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

from pydantic import ValidationError

from contracts.base import Event
from contracts.catalogue import UnknownEventType, event_class_for

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
MAX_EVENT_BYTES = 512 * 1024
"""Largest event value we accept; anything bigger is refused before parsing."""

HEADER_ID = "ce_id"
HEADER_TYPE = "ce_type"
HEADER_SOURCE = "ce_source"
HEADER_SPECVERSION = "ce_specversion"
HEADER_TIME = "ce_time"
HEADER_SUBJECT = "ce_subject"
HEADER_CORRELATION_ID = "ce_correlationid"
HEADER_CAUSATION_ID = "ce_causationid"
HEADER_CONTENT_TYPE = "content-type"

REQUIRED_HEADERS = (HEADER_ID, HEADER_TYPE, HEADER_SOURCE, HEADER_SPECVERSION)

Headers = list[tuple[str, bytes]]


class InvalidEvent(ValueError):
    """A record that is not a valid event of our contracts. Never retried: dead-lettered."""


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes
    value: bytes
    headers: Headers


def encode(
    event: Event,
    *,
    source: str,
    correlation_id: str | None = None,
    causation_id: UUID | None = None,
) -> Record:
    """The Kafka record for an event. `source` names the emitting service (`/oms/order`)."""
    headers: Headers = [
        (HEADER_ID, str(event.event_id).encode()),
        (HEADER_TYPE, event.event_type().encode()),
        (HEADER_SOURCE, source.encode()),
        (HEADER_SPECVERSION, SPECVERSION.encode()),
        (HEADER_TIME, event.occurred_at.isoformat().replace("+00:00", "Z").encode()),
        (HEADER_SUBJECT, event.subject().encode()),
        (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode()),
        (HEADER_CORRELATION_ID, (correlation_id or str(event.event_id)).encode()),
    ]
    if causation_id is not None:
        headers.append((HEADER_CAUSATION_ID, str(causation_id).encode()))
    return Record(
        key=event.partition_key().encode(),
        value=event.model_dump_json().encode(),
        headers=headers,
    )


def header_map(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes | str]) -> dict[str, str]:
    """Headers as text; undecodable bytes become replacement characters, never an error."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        for name, value in items
    }


def decode(headers: Mapping[str, str], value: bytes) -> Event:
    """The event a record carries, or `InvalidEvent` saying exactly what is wrong with it."""
    missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        raise InvalidEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    if headers[HEADER_SPECVERSION] != SPECVERSION:
        raise InvalidEvent(f"unsupported ce_specversion {headers[HEADER_SPECVERSION]!r}")
    if len(value) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event of {len(value)} bytes exceeds the {MAX_EVENT_BYTES} limit")
    try:
        event_class = event_class_for(headers[HEADER_TYPE])
    except UnknownEventType as error:
        raise InvalidEvent(str(error)) from None
    try:
        event = event_class.model_validate_json(value)
    except ValidationError as error:
        raise InvalidEvent(
            f"{headers[HEADER_TYPE]} fails its contract: {_contract_violations(error)}"
        ) from None
    if str(event.event_id) != headers[HEADER_ID]:
        raise InvalidEvent(
            f"ce_id {headers[HEADER_ID]!r} does not match the payload's event_id {event.event_id}"
        )
    return event


MAX_REPORTED_VIOLATIONS = 10


def _contract_violations(error: ValidationError) -> str:
    """Where and how the payload breaks its contract, one `path: problem` per violation.

    Without the offending values: this text ends up in logs and dead-letter headers, and
    payloads carry customers' names and addresses. Capped, so a 500-line order that is
    wrong on every line still makes a header of reasonable size.
    """
    violations = error.errors(include_url=False, include_input=False, include_context=False)
    described = [
        f"{'.'.join(str(part) for part in violation['loc']) or 'payload'}: {violation['msg']}"
        for violation in violations[:MAX_REPORTED_VIOLATIONS]
    ]
    if len(violations) > MAX_REPORTED_VIOLATIONS:
        described.append(f"and {len(violations) - MAX_REPORTED_VIOLATIONS} more")
    return "; ".join(described)
