"""A consumed batch applied set-based, in one transaction on an asyncpg connection:

1. every event id goes into the inbox with one statement; the ones already there (a
   redelivery, a replay, the same event twice in the batch) are left out;
2. the service loads the state the new events need, one query per table;
3. each event is applied in memory by its use case, in the order it was consumed (so an
   order that appears twice in a batch sees its own first change), each under its own
   cause and consumer span;
4. the service writes the changes, one statement per table, and the emitted events go
   into the outbox with one statement; one commit.

A service says how with a `Router`: a use case per event type, and its `load` and `save`.
Use cases are plain functions of the loaded state, the event and a `Context` (the time,
and `emit`): no I/O, so the whole batch costs a handful of round trips however big it is.
A batch of one record goes through the same path.

Crash behaviour: nothing is visible until the commit; a crash or an error before it rolls
everything back (inbox rows included), and the records are consumed again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanContext, SpanKind, TraceFlags, Tracer

from contracts.base import Event
from contracts.wire import HEADER_ID
from services.kit.dead_letters import ConsumedRecord
from services.kit.emitted import Cause, EmittedEvents
from services.kit.telemetry import MESSAGE_KEY_ATTRIBUTE, order_span_attributes

S = TypeVar("S")
E = TypeVar("E", bound=Event)

_CLAIM = """
INSERT INTO inbox (event_id, event_type, topic, partition, "offset")
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""
_RECORD_OUTBOX = """
INSERT INTO outbox (event_id, event_type, topic, key, value, headers)
SELECT event_id, event_type, topic, key, value, headers::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[])
    AS emitted(event_id, event_type, topic, key, value, headers)
"""


@dataclass(frozen=True, slots=True)
class Consumed:
    """A consumed record whose event was read, with what applying it needs."""

    event: Event
    cause: Cause
    record: ConsumedRecord
    headers: Mapping[str, str]


class Context:
    """What a use case may do besides changing the loaded state."""

    __slots__ = ("_events", "now")

    def __init__(self, events: EmittedEvents, now: datetime) -> None:
        self._events = events
        self.now = now
        """The batch's time: one clock reading for every event of it."""

    def emit(self, event: Event) -> None:
        """Record an event, caused by the event being applied, for the outbox."""
        self._events.emit(event)


UseCase = Callable[[S, Any, Context], None]
Loader = Callable[[asyncpg.Connection, Sequence[Event]], Awaitable[S]]
Saver = Callable[[asyncpg.Connection, S], Awaitable[None]]


class Router(Generic[S]):
    """A service's consumed events: the use case of each type, and how a batch's state is
    loaded (`load(connection, events)`, with its rows locked in key order) and saved
    (`save(connection, state)`). Events of other types are skipped unread, and so are
    those of a registered type when `wanted(event_type)` says no (a service whose interest
    changes at run time: the webhook subscriptions of the notification service)."""

    def __init__(
        self,
        *,
        load: Loader[S],
        save: Saver[S],
        wanted: Callable[[str], bool] | None = None,
    ) -> None:
        self._load = load
        self._save = save
        self._wanted = wanted
        self._use_cases: dict[type[Event], UseCase[S]] = {}
        self._types: frozenset[str] = frozenset()

    def on(self, event_type: type[E]) -> Callable[[Callable[[S, E, Context], None]], None]:
        """Registers the decorated function as the use case of `event_type`."""

        def register(use_case: Callable[[S, E, Context], None]) -> None:
            if event_type in self._use_cases:
                raise ValueError(f"{event_type.__name__} already has a use case")
            self._use_cases[event_type] = use_case
            self._types = self._types | {event_type.event_type()}

        return register

    def applies(self, event_type: str) -> bool:
        """Whether events of this CloudEvents type are applied now (else skipped unread)."""
        return event_type in self._types and (self._wanted is None or self._wanted(event_type))

    async def apply(self, work: BatchWork, batch: Sequence[Consumed]) -> None:
        state = await self._load(work.connection, [consumed.event for consumed in batch])
        context = Context(work.events, datetime.now(UTC))
        for consumed in batch:
            with work.applying(consumed):
                self._use_cases[type(consumed.event)](state, consumed.event, context)
        await self._save(work.connection, state)


class BatchWork:
    """One transaction applying a batch: the inbox claim, the service's changes, the
    outbox rows, and the consumer span of each event (ended by the caller, after the
    commit, when their effect happened)."""

    def __init__(
        self,
        connection: asyncpg.Connection,
        *,
        source: str,
        topic_for: Callable[[type[Event]], str],
        tracer: Tracer,
        service: str,
    ) -> None:
        self.connection = connection
        self._tracer = tracer
        self.events = EmittedEvents(
            source=source, topic_for=topic_for, tracer=tracer, service=service
        )
        self.spans: list[Span] = []

    async def claim(self, batch: Sequence[Consumed]) -> list[Consumed]:
        """The events of the batch not applied before, each once, in batch order."""
        first: dict[UUID, Consumed] = {}
        for consumed in batch:
            first.setdefault(consumed.event.event_id, consumed)
        if not first:
            return []
        rows = await self.connection.fetch(
            _CLAIM,
            list(first),
            [consumed.event.event_type() for consumed in first.values()],
            [consumed.record.topic for consumed in first.values()],
            [consumed.record.partition for consumed in first.values()],
            [consumed.record.offset for consumed in first.values()],
        )
        claimed = {row["event_id"] for row in rows}
        return [consumed for event_id, consumed in first.items() if event_id in claimed]

    @contextlib.contextmanager
    def applying(self, consumed: Consumed) -> Iterator[None]:
        """The event's consumer span (a child of the context its headers carry) is current,
        and what is emitted is caused by it."""
        span = self._consumer_span(consumed)
        self.spans.append(span)
        with trace.use_span(span, end_on_exit=False), self.events.caused_by(consumed.cause):
            yield

    async def record_outbox(self) -> int:
        """Writes the emitted events to the outbox; returns how many."""
        self.spans.extend(self.events.finish(None))
        rows = self.events.rows
        if rows:
            await self.connection.execute(
                _RECORD_OUTBOX,
                [row.event_id for row in rows],
                [row.event_type for row in rows],
                [row.topic for row in rows],
                [row.key for row in rows],
                [row.value for row in rows],
                [json.dumps(row.headers) for row in rows],
            )
        return len(rows)

    def _consumer_span(self, consumed: Consumed) -> Span:
        return consumer_span(self._tracer, consumed.record, consumed.headers)


def consumer_span(tracer: Tracer, record: ConsumedRecord, headers: Mapping[str, str]) -> Span:
    """The record's consumer span, a child of the trace context its headers carry. In a
    trace that is not sampled nothing is recorded, so nothing is made: the upstream
    context itself stands for the span, and the events it causes carry it on."""
    unsampled = unsampled_context(headers.get("traceparent"))
    if unsampled is not None:
        return trace.NonRecordingSpan(unsampled)
    context = propagate.extract(headers)
    name = f"{record.topic} process"
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation": "process",
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
        **order_span_attributes(headers),
    }
    if record.key is not None:
        attributes[MESSAGE_KEY_ATTRIBUTE] = record.key.decode("utf-8", "replace")
    if event_id := headers.get(HEADER_ID):
        attributes["messaging.message.id"] = event_id
    return tracer.start_span(name, context=context, kind=SpanKind.CONSUMER, attributes=attributes)


def unsampled_context(traceparent: str | None) -> SpanContext | None:
    """The span context of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`) whose
    sampled flag is off; None for a sampled, missing or malformed one."""
    parts = traceparent.split("-") if traceparent is not None else []
    if len(parts) != 4:
        return None
    version, trace_id, span_id, flags = parts
    try:
        if version != "00" or int(flags, 16) & 1:
            return None
        context = SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(int(flags, 16)),
        )
    except ValueError:
        return None
    return context if context.is_valid else None
