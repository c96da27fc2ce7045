"""One database transaction holding a service's state change and the events it emits,
for HTTP commands and background jobs (consumed batches use `services.kit.batch`).

Use cases receive a `UnitOfWork`, change state through `uow.connection` and call
`uow.emit(event)`; the events are written to the outbox in the same transaction, so there
is no state change without its event and no event without its state change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from types import TracebackType
from typing import Self

from opentelemetry import trace
from opentelemetry.trace import Tracer
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from contracts.base import Event
from contracts.catalogue import topic_of
from services.kit.emitted import Cause, EmittedEvents, mark_failed
from services.kit.tables import outbox

__all__ = ["Cause", "UnitOfWork"]


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
        self._tracer = tracer or trace.get_tracer(__name__)
        self._service = service
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._events: EmittedEvents | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not open")
        return self._connection

    @contextmanager
    def caused_by(self, cause: Cause) -> Iterator[None]:
        """Work done and events emitted inside belong to `cause`, and to the span that is
        current on entry."""
        with self._open_events().caused_by(cause):
            yield

    def emit(self, event: Event) -> None:
        """Record an event to publish once this transaction commits."""
        self._open_events().emit(event)

    def _open_events(self) -> EmittedEvents:
        if self._events is None:
            raise RuntimeError("the unit of work is not open")
        return self._events

    async def __aenter__(self) -> Self:
        self._events = EmittedEvents(
            source=self._source,
            topic_for=self._topic_for,
            tracer=self._tracer,
            service=self._service,
            cause=self._cause,
        )
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
        events = self._open_events()
        spans = events.finish(exc)
        emitted = [asdict(row) for row in events.rows]
        try:
            if exc_type is None:
                if emitted:
                    await self._connection.execute(insert(outbox), emitted)
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        except BaseException as error:
            for span in spans:
                mark_failed(span, error)
            raise
        finally:
            await self._connection.close()
            self._connection = None
            self._events = None
            for span in spans:
                span.end()
        if exc_type is None and emitted and self._on_committed is not None:
            self._on_committed()
