"""The events one transaction records, each under its cause, with the trace they belong to.

A transaction may apply many consumed events (a batch) or one command. `caused_by(cause)`
opens one scope per consumed event, so each emitted event keeps its own cause
(correlation and causation ids) and its own trace, while they all share one commit.

At the end, `finish` makes each scope's `db.transaction` span (only where it is worth one:
inside a recording consume or command, or a job's round about one order) and stamps each
row with its scope's trace context, so the relay continues the trace, sampled or not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from contracts.base import Event, OrderEvent
from contracts.wire import encode
from services.kit.telemetry import ORDER_ID_ATTRIBUTE


@dataclass(frozen=True, slots=True)
class Cause:
    """The consumed event (or command) that led to this unit of work."""

    event_id: UUID
    correlation_id: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One recorded event, ready for the outbox."""

    event_id: UUID
    event_type: str
    topic: str
    key: str
    value: bytes
    headers: list[list[str]]


@dataclass(slots=True)
class _Scope:
    """What one cause contributes to the transaction: its events, the orders they
    concern, and the span its work ran in."""

    cause: Cause | None
    enclosing: Span
    started_ns: int
    rows: list[OutboxRow] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)


class EmittedEvents:
    """The events of one transaction, scope by scope."""

    def __init__(
        self,
        *,
        source: str,
        topic_for: Callable[[type[Event]], str],
        tracer: Tracer,
        service: str | None,
        cause: Cause | None = None,
    ) -> None:
        self._source = source
        self._topic_for = topic_for
        self._tracer = tracer
        self._service = service
        self._scopes = [_Scope(cause, trace.get_current_span(), time.time_ns())]
        self._current: _Scope | None = self._scopes[0]

    @contextlib.contextmanager
    def caused_by(self, cause: Cause) -> Iterator[None]:
        """Events emitted inside belong to `cause`, and to the span current on entry."""
        outer = self._current
        scope = _Scope(cause, trace.get_current_span(), time.time_ns())
        self._scopes.append(scope)
        self._current = scope
        try:
            yield
        finally:
            self._current = outer

    def emit(self, event: Event) -> None:
        """Record an event to publish once the transaction commits."""
        scope = self._current
        if scope is None:
            raise RuntimeError("the unit of work is closed")
        cause = scope.cause
        record = encode(
            event,
            source=self._source,
            correlation_id=cause.correlation_id if cause else None,
            causation_id=cause.event_id if cause else None,
        )
        if isinstance(event, OrderEvent) and event.order_id not in scope.order_ids:
            scope.order_ids.append(event.order_id)
        # The trace context is added at the end, from the scope's transaction span.
        scope.rows.append(
            OutboxRow(
                event_id=event.event_id,
                event_type=event.event_type(),
                topic=self._topic_for(type(event)),
                key=record.key.decode(),
                value=record.value,
                headers=[[name, value.decode()] for name, value in record.headers],
            )
        )

    @property
    def rows(self) -> list[OutboxRow]:
        return [row for scope in self._scopes for row in scope.rows]

    def finish(self, error: BaseException | None) -> list[Span]:
        """Every scope's transaction span (to end once the transaction is over), each
        scope's rows stamped with its trace context. No events can be emitted after."""
        self._current = None
        return [span for scope in self._scopes if (span := self._transaction_span(scope, error))]

    def _transaction_span(self, scope: _Scope, error: BaseException | None) -> Span | None:
        """The scope's `db.transaction` span, made at the end when the whole story is
        known: the orders it concerns and whether it is worth a span at all (always inside
        a traced consume or command; in a background job only when it records events of
        at most one order: polling rounds that change nothing would flood the spans
        topic). The scope's events carry its context."""
        enclosing = scope.enclosing
        enclosing_attributes = getattr(enclosing, "attributes", None) or {}
        order_ids = list(scope.order_ids)
        inherited = enclosing_attributes.get(ORDER_ID_ATTRIBUTE)
        if isinstance(inherited, str) and inherited not in order_ids:
            order_ids.insert(0, inherited)
        if not enclosing.is_recording() and (
            not scope.rows or len(order_ids) > 1 or enclosing.get_span_context().is_valid
        ):
            # Outside any trace, a round that records nothing is not worth a span, and a
            # batch over many orders must not tie their otherwise separate traces together.
            # Inside a trace that is not sampled, the events carry its context as it is.
            _stamp_trace(scope, enclosing)
            return None
        attributes: dict[str, str] = {"db.system": "postgresql"}
        if self._service:
            attributes["oms.service"] = self._service
        if len(order_ids) == 1:
            attributes[ORDER_ID_ATTRIBUTE] = order_ids[0]
        elif order_ids:
            attributes["oms.order_ids"] = ",".join(order_ids[:50])
        if scope.rows:
            attributes["oms.emitted"] = ",".join(row.event_type for row in scope.rows)
        span = self._tracer.start_span(
            "db.transaction",
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            context=trace.set_span_in_context(enclosing),
            start_time=scope.started_ns,
        )
        if not span.get_span_context().is_valid:
            # No tracing configured: keep the enclosing context for the outbox rows.
            _stamp_trace(scope, enclosing)
            return None
        if error is not None:
            mark_failed(span, error)
        # An HTTP command or a channel's submission learns its order only here: say so on
        # the enclosing span too, so it is found with the order's other spans.
        if (
            len(scope.order_ids) == 1
            and enclosing.is_recording()
            and ORDER_ID_ATTRIBUTE not in enclosing_attributes
        ):
            enclosing.set_attribute(ORDER_ID_ATTRIBUTE, scope.order_ids[0])
        _stamp_trace(scope, span)
        return span


def _stamp_trace(scope: _Scope, span: Span) -> None:
    """Each event of the scope carries `span`'s trace context (`traceparent`, ...)."""
    if not scope.rows:
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    for row in scope.rows:
        row.headers.extend([name, value] for name, value in carrier.items())


def mark_failed(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
