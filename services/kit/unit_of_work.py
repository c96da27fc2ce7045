"""One database transaction holding a service's state change and the events it emits.

Use cases receive a `UnitOfWork`, change state through `uow.connection` and call
`uow.emit(event)`; the events are written to the outbox in the same transaction, so there
is no state change without its event and no event without its state change.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self, cast
from uuid import UUID

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from contracts.base import Event, OrderEvent
from contracts.catalogue import topic_of
from contracts.wire import encode
from services.kit.tables import outbox
from services.kit.telemetry import ORDER_ID_ATTRIBUTE, current_trace_headers


@dataclass(frozen=True, slots=True)
class Cause:
    """The consumed event (or command) that led to this unit of work."""

    event_id: UUID
    correlation_id: str


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
        self._pending: list[dict[str, object]] = []
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._tracer = tracer or trace.get_tracer(__name__)
        self._service = service
        self._order_ids: list[str] = []
        self._started_ns = 0
        self._enclosing: Span = trace.INVALID_SPAN

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not open")
        return self._connection

    def emit(self, event: Event) -> None:
        """Record an event to publish once this transaction commits."""
        record = encode(
            event,
            source=self._source,
            correlation_id=self._cause.correlation_id if self._cause else None,
            causation_id=self._cause.event_id if self._cause else None,
        )
        # The trace context is added at commit, from inside the transaction's span.
        headers = [[name, value.decode()] for name, value in record.headers]
        if isinstance(event, OrderEvent) and event.order_id not in self._order_ids:
            self._order_ids.append(event.order_id)
        self._pending.append(
            {
                "event_id": event.event_id,
                "event_type": event.event_type(),
                "topic": self._topic_for(type(event)),
                "key": record.key.decode(),
                "value": record.value,
                "headers": headers,
            }
        )

    async def __aenter__(self) -> Self:
        self._started_ns = time.time_ns()
        self._enclosing = trace.get_current_span()
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
        span = self._transaction_span(exc)
        try:
            with trace.use_span(span, end_on_exit=True) if span else contextlib.nullcontext():
                if exc_type is None:
                    if self._pending:
                        trace_headers = [
                            [name, value] for name, value in current_trace_headers().items()
                        ]
                        for row in self._pending:
                            cast(list[list[str]], row["headers"]).extend(trace_headers)
                        await self._connection.execute(insert(outbox), self._pending)
                    await self._transaction.commit()
                else:
                    await self._transaction.rollback()
        finally:
            await self._connection.close()
            self._connection = None
        if exc_type is None and self._pending and self._on_committed is not None:
            self._on_committed()

    def _transaction_span(self, error: BaseException | None) -> Span | None:
        """The `db.transaction` span, made at the end when the whole story is known: the
        orders it concerns and whether it is worth a span at all (always inside a traced
        consume or command; in a background job only when it records events of at most
        one order: polling rounds that change nothing would flood the spans topic)."""
        enclosing_attributes = getattr(self._enclosing, "attributes", None) or {}
        order_ids = list(self._order_ids)
        inherited = enclosing_attributes.get(ORDER_ID_ATTRIBUTE)
        if isinstance(inherited, str) and inherited not in order_ids:
            order_ids.insert(0, inherited)
        if not self._enclosing.is_recording() and (not self._pending or len(order_ids) > 1):
            # Outside any trace, a round that records nothing is not worth a span, and a
            # batch over many orders must not tie their otherwise separate traces together.
            return None
        attributes: dict[str, str] = {"db.system": "postgresql"}
        if self._service:
            attributes["oms.service"] = self._service
        if len(order_ids) == 1:
            attributes[ORDER_ID_ATTRIBUTE] = order_ids[0]
        elif order_ids:
            attributes["oms.order_ids"] = ",".join(order_ids[:50])
        if self._pending:
            attributes["oms.emitted"] = ",".join(str(row["event_type"]) for row in self._pending)
        span = self._tracer.start_span(
            "db.transaction",
            kind=trace.SpanKind.INTERNAL,
            attributes=attributes,
            context=trace.set_span_in_context(self._enclosing),
            start_time=self._started_ns,
        )
        if not span.get_span_context().is_valid:
            # No tracing configured: keep the enclosing context for the outbox rows.
            return None
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        # An HTTP command or a channel's submission learns its order only here: say so on
        # the enclosing span too, so it is found with the order's other spans.
        if (
            len(self._order_ids) == 1
            and self._enclosing.is_recording()
            and ORDER_ID_ATTRIBUTE not in enclosing_attributes
        ):
            self._enclosing.set_attribute(ORDER_ID_ATTRIBUTE, self._order_ids[0])
        return span
