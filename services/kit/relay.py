"""The outbox relay: publishes recorded events in the order they were recorded, waits for
the broker's acknowledgement (acks=all, idempotent producer), then marks them sent.

A crash between publishing and marking republishes the batch on restart: consumers'
inboxes absorb the duplicates. Only one relay per database publishes at a time (a
PostgreSQL advisory lock), so replicas of a service cannot interleave one order's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind, Tracer
from sqlalchemy import Row, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.kit.batch import unsampled_context
from services.kit.kafka import ResilientProducer
from services.kit.logs import get_logger
from services.kit.metrics import Metrics
from services.kit.tables import outbox
from services.kit.telemetry import (
    context_from_headers,
    current_trace_headers,
    order_span_attributes,
)

log = get_logger(__name__)

TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


# Built once: the relay runs them for every batch it publishes.
_UNSENT = (
    select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
    .where(outbox.c.sent_at.is_(None))
    .order_by(outbox.c.id)
    .limit(bindparam("batch_size"))
)
_MARK_SENT = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(sent_at=text("now()"))
)


def relay_lock_id(service: str) -> int:
    """A stable advisory-lock id per service (crc32 fits PostgreSQL's bigint key)."""
    return zlib.crc32(f"oms-outbox-relay:{service}".encode())


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        producer: ResilientProducer,
        tracer: Tracer,
        metrics: Metrics,
        batch_size: int = 500,
        idle_seconds: float = 0.5,
    ) -> None:
        self._service = service
        self._engine = engine
        self._producer = producer
        self._tracer = tracer
        self._metrics = metrics
        self._batch_size = batch_size
        self._idle_seconds = idle_seconds
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Called after a unit of work commits events: publish now rather than at the poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Publish forever; survives database and broker outages by retrying."""
        while True:
            try:
                async with self._engine.connect() as lock_connection:
                    try:
                        await self._wait_for_leadership(lock_connection)
                        await self._publish_while_leader(lock_connection)
                    finally:
                        # The advisory lock belongs to the database session: a connection
                        # going back to the pool alive would keep it, and the next attempt,
                        # on another pooled connection, would wait for its own lock forever.
                        await lock_connection.invalidate()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("outbox relay interrupted; retrying", error=repr(error))
                await asyncio.sleep(1.0)

    async def _wait_for_leadership(self, connection: AsyncConnection) -> None:
        lock_id = relay_lock_id(self._service)
        while True:
            acquired = await connection.scalar(text(f"SELECT pg_try_advisory_lock({lock_id})"))
            await connection.commit()
            if acquired:
                log.info("outbox relay is publishing for this service")
                return
            await asyncio.sleep(self._idle_seconds * 4)

    async def _publish_while_leader(self, lock_connection: AsyncConnection) -> None:
        while True:
            published = await self.publish_batch()
            if published < self._batch_size:
                # Leadership lives in the lock connection: check it still answers.
                await lock_connection.scalar(text("SELECT 1"))
                await lock_connection.commit()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_seconds)
                self._wakeup.clear()

    async def publish_batch(self) -> int:
        """Publish up to one batch of unsent events; returns how many were published."""
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_UNSENT, {"batch_size": self._batch_size})).all()
            await connection.rollback()
        self._metrics.outbox_backlog.labels(self._service).set(len(rows))
        if not rows:
            return 0
        try:
            await self._publish(rows)
        except KafkaError:
            # Nothing of this batch is marked sent: it is published again, after the
            # producer is replaced (a stalled idempotent producer never recovers alone).
            await self._producer.recreate()
            raise
        await self.mark_sent([row.id for row in rows])
        self._metrics.events_published.labels(self._service).inc(len(rows))
        return len(rows)

    async def _publish(self, rows: Sequence[Row[Any, Any, Any, Any, Any]]) -> None:
        deliveries = []
        for row in rows:
            stored = {name: value for name, value in row.headers}
            if unsampled_context(stored.get("traceparent")) is not None:
                # Nobody records this trace: pass its context on as stored, with no span.
                headers = [(name, value.encode()) for name, value in row.headers]
            else:
                headers = [
                    (name, value.encode())
                    for name, value in row.headers
                    if name not in TRACE_HEADERS
                ]
                headers.extend(
                    (name, value.encode()) for name, value in self._publish_span(row, stored)
                )
            # send() only enqueues; awaiting all deliveries together keeps batches flowing.
            deliveries.append(
                await self._producer.send(
                    row.topic, value=row.value, key=row.key.encode(), headers=headers
                )
            )
        await asyncio.gather(*deliveries)

    def _publish_span(
        self, row: Row[Any, Any, Any, Any, Any], stored: dict[str, str]
    ) -> list[tuple[str, str]]:
        """The trace headers of the record: those of its publish span, a child of the
        context stored with the event."""
        with self._tracer.start_as_current_span(
            f"{row.topic} publish",
            context=context_from_headers(stored),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": row.topic,
                "messaging.kafka.message.key": row.key,
                **order_span_attributes(stored),
            },
        ):
            return list(current_trace_headers().items())

    async def mark_sent(self, ids: list[int]) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(_MARK_SENT, {"ids": ids})
