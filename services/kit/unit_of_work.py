"""One database transaction holding a service's state change and the events it emits.

Use cases receive a `UnitOfWork`, change state through `uow.connection` and call
`uow.emit(event)`; the events are written to the outbox in the same transaction, so there
is no state change without its event and no event without its state change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from contracts.base import Event
from contracts.catalogue import topic_of
from contracts.wire import encode
from services.kit.tables import outbox
from services.kit.telemetry import current_trace_headers


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
    ) -> None:
        self._engine = engine
        self._source = source
        self._cause = cause
        self._on_committed = on_committed
        self._topic_for = topic_for
        self._pending: list[dict[str, object]] = []
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None

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
        headers = [[name, value.decode()] for name, value in record.headers]
        headers.extend([name, value] for name, value in current_trace_headers().items())
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
        try:
            if exc_type is None:
                if self._pending:
                    await self._connection.execute(insert(outbox), self._pending)
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        finally:
            await self._connection.close()
            self._connection = None
        if exc_type is None and self._pending and self._on_committed is not None:
            self._on_committed()
