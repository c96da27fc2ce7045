"""One database transaction holding a service's state change and the events it emits.

Use cases receive a `UnitOfWork`, change state through `uow.connection` and call
`uow.emit(event)`; the events are written to the outbox in the same transaction, so there
is no state change without its event and no event without its state change.

A consumer applies a batch of events in one unit of work: `caused_by(cause)` opens one
scope per consumed event, so each emitted event keeps its own cause (correlation and
causation ids) and its own trace, while the batch shares one commit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from uuid import UUID

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from contracts.base import Event, OrderEvent
from contracts.catalogue import topic_of
from contracts.wire import encode
from services.kit.tables import outbox
from services.kit.telemetry import ORDER_ID_ATTRIBUTE


@dataclass(frozen=True, slots=True)
class Cause:
    """The consumed event (or command) that led to this unit of work."""

    event_id: UUID
    correlation_id: str


@dataclass(slots=True)
class _Scope:
    """What one cause contributes to the transaction: its events, the orders they
    concern, and the span its work ran in."""

    cause: Cause | None
    enclosing: Span
    started_ns: int
    rows: list[dict[str, object]] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)


class UnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        source: str,
        cause: Cause | None = None,
        on_committed: Callable[[], None] | None = None,
        topic_for: Callable[[type[Event]], str] = topic_of,
        tracer: Tracer | None = None,
        service: str | None = None,
    ) -> None:
        self._engine = engine
        self._source = source
        self._cause = cause
        self._on_committed = on_committed
        self._topic_for = topic_for
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._tracer = tracer or trace.get_tracer(__name__)
        self._service = service
        self._scopes: list[_Scope] = []
        self._current: _Scope | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not open")
        return self._connection

    @contextlib.contextmanager
    def caused_by(self, cause: Cause) -> Iterator[None]:
        """Work done and events emitted inside belong to `cause`, and to the span that is
        current on entry."""
        outer = self._current
        scope = _Scope(cause, trace.get_current_span(), time.time_ns())
        self._scopes.append(scope)
        self._current = scope
        try:
            yield
        finally:
            self._current = outer

    def emit(self, event: Event) -> None:
        """Record an event to publish once this transaction commits."""
        scope = self._current
        if scope is None:
            raise RuntimeError("the unit of work is not open")
        cause = scope.cause
        record = encode(
            event,
            source=self._source,
            correlation_id=cause.correlation_id if cause else None,
            causation_id=cause.event_id if cause else None,
        )
        if isinstance(event, OrderEvent) and event.order_id not in scope.order_ids:
            scope.order_ids.append(event.order_id)
        # The trace context is added at commit, from the scope's transaction span.
        scope.rows.append(
            {
                "event_id": event.event_id,
                "event_type": event.event_type(),
                "topic": self._topic_for(type(event)),
                "key": record.key.decode(),
                "value": record.value,
                "headers": [[name, value.decode()] for name, value in record.headers],
            }
        )

    async def __aenter__(self) -> Self:
        scope = _Scope(self._cause, trace.get_current_span(), time.time_ns())
        self._scopes = [scope]
        self._current = scope
        self._connection = await self._engine.connect()
        self._transaction = await self._connection.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._connection is not None and self._transaction is not None
        spans = [span for scope in self._scopes if (span := self._transaction_span(scope, exc))]
        emitted = [row for scope in self._scopes for row in scope.rows]
        try:
            if exc_type is None:
                if emitted:
                    await self._connection.execute(insert(outbox), emitted)
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        except BaseException as error:
            for span in spans:
                _mark_failed(span, error)
            raise
        finally:
            await self._connection.close()
            self._connection = None
            self._current = None
            for span in spans:
                span.end()
        if exc_type is None and emitted and self._on_committed is not None:
            self._on_committed()

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
        if not enclosing.is_recording() and (not scope.rows or len(order_ids) > 1):
            # Outside any trace, a round that records nothing is not worth a span, and a
            # batch over many orders must not tie their otherwise separate traces together.
            self._stamp_trace(scope, enclosing)
            return None
        attributes: dict[str, str] = {"db.system": "postgresql"}
        if self._service:
            attributes["oms.service"] = self._service
        if len(order_ids) == 1:
            attributes[ORDER_ID_ATTRIBUTE] = order_ids[0]
        elif order_ids:
            attributes["oms.order_ids"] = ",".join(order_ids[:50])
        if scope.rows:
            attributes["oms.emitted"] = ",".join(str(row["event_type"]) for row in scope.rows)
        span = self._tracer.start_span(
            "db.transaction",
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            context=trace.set_span_in_context(enclosing),
            start_time=scope.started_ns,
        )
        if not span.get_span_context().is_valid:
            # No tracing configured: keep the enclosing context for the outbox rows.
            self._stamp_trace(scope, enclosing)
            return None
        if error is not None:
            _mark_failed(span, error)
        # An HTTP command or a channel's submission learns its order only here: say so on
        # the enclosing span too, so it is found with the order's other spans.
        if (
            len(scope.order_ids) == 1
            and enclosing.is_recording()
            and ORDER_ID_ATTRIBUTE not in enclosing_attributes
        ):
            enclosing.set_attribute(ORDER_ID_ATTRIBUTE, scope.order_ids[0])
        self._stamp_trace(scope, span)
        return span

    @staticmethod
    def _stamp_trace(scope: _Scope, span: Span) -> None:
        """Each event of the scope carries `span`'s trace context (`traceparent`, ...)."""
        if not scope.rows:
            return
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        for row in scope.rows:
            headers = row["headers"]
            assert isinstance(headers, list)
            headers.extend([name, value] for name, value in carrier.items())


def _mark_failed(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
