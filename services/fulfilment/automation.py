"""The automatic mode, for demos and benchmarks: a background job that plays the
warehouse and the carrier, taking each shipment's steps once they are due.

Its whole state is the shipments' `next_step_at` in the database, so it carries on after
a restart. It works in rounds, set-based: a round claims the due shipments (`FOR UPDATE
SKIP LOCKED`, so replicas and workers share the work without ever stepping one shipment
twice or waiting for each other), takes their due steps in memory, and writes the
shipments and the events reporting the steps with one statement each, in one
transaction. A round that finds nothing due costs one cheap query.

A round that fails for a reason other than the database being away is split in halves,
down to the shipment at fault, so the others still take their steps; that one is tried
again after a pause. A database outage pauses the mode, never ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from opentelemetry.trace import Span

from services.fulfilment import batch_state, service
from services.fulfilment.service import FulfilmentRules
from services.kit.batch import BatchWork, Context
from services.kit.emitted import mark_failed
from services.kit.errors import is_transient
from services.kit.logs import get_logger
from services.kit.runtime import ServiceRuntime

log = get_logger(__name__)

BackgroundJob = Callable[[ServiceRuntime], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    claimed: int
    """Shipments the round claimed (the others due were held by other rounds)."""
    failed: tuple[str, ...] = ()
    """Shipments whose steps failed, left as they were for a later round."""


class AutomaticRounds:
    """One worker's rounds of automatic steps, on a connection of its own: kept from round
    to round (a pool's connection is reset on every release, a second query per idle
    round), replaced after a failure."""

    def __init__(self, runtime: ServiceRuntime, rules: FulfilmentRules, *, batch_size: int) -> None:
        self._runtime = runtime
        self._rules = rules
        self._batch_size = batch_size
        self._connection: asyncpg.Connection | None = None

    async def run(self) -> RoundOutcome:
        """One round: up to the batch size of the most overdue shipments, stepped together."""
        connection = await self._connected()
        try:
            return await self._round(connection)
        except Exception:
            self.close()  # it may be the connection that failed
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None

    async def _connected(self) -> asyncpg.Connection:
        if self._connection is None:
            self._connection = await asyncpg.connect(
                self._runtime.settings.database_url.replace(
                    "postgresql+asyncpg://", "postgresql://", 1
                ),
                # As the consumer's connections: a generic plan of an `unnest` or `= ANY`
                # statement costs more than planning it each time.
                server_settings={
                    "plan_cache_mode": "force_custom_plan",
                    "application_name": f"{self._runtime.definition.name}-automatic",
                },
            )
        return self._connection

    async def _round(self, connection: asyncpg.Connection) -> RoundOutcome:
        now = datetime.now(UTC)
        if not await batch_state.any_due(connection, now):
            return RoundOutcome(claimed=0)
        claimed: list[str] = []
        try:
            await self._step(connection, now, claimed, among=None)
        except Exception as error:
            if is_transient(error) or not claimed:
                raise
            return RoundOutcome(len(claimed), await self._isolate(connection, now, claimed, error))
        return RoundOutcome(len(claimed))

    async def _isolate(
        self,
        connection: asyncpg.Connection,
        now: datetime,
        shipment_ids: Sequence[str],
        error: Exception,
    ) -> tuple[str, ...]:
        """Steps the shipments of a failed round in halves, down to the ones at fault;
        returns those."""
        if len(shipment_ids) == 1:
            log.error(
                "automatic step failed; tried again after a pause",
                shipment_id=shipment_ids[0],
                exc_info=error,
            )
            return (shipment_ids[0],)
        middle = len(shipment_ids) // 2
        failed: tuple[str, ...] = ()
        for half in (shipment_ids[:middle], shipment_ids[middle:]):
            try:
                await self._step(connection, now, [], among=half)
            except Exception as again:
                if is_transient(again):
                    raise
                failed += await self._isolate(connection, now, half, again)
        return failed

    async def _step(
        self,
        connection: asyncpg.Connection,
        now: datetime,
        claimed: list[str],
        *,
        among: Sequence[str] | None,
    ) -> None:
        """Claims the due shipments (`among` these only, when given), adding their ids to
        `claimed` as soon as they are known, and takes their steps in one transaction."""
        runtime = self._runtime
        spans: list[Span] = []
        try:
            async with connection.transaction():
                work = BatchWork(
                    connection,
                    source=runtime.source,
                    topic_for=runtime.topic_names.of_event,
                    tracer=runtime.tracer,
                    service=runtime.definition.name,
                )
                spans = work.spans
                due = await (
                    batch_state.claim_due(connection, now, self._batch_size)
                    if among is None
                    else batch_state.claim_due_among(connection, now, among)
                )
                claimed.extend(shipment.shipment_id for shipment in due)
                stepped = service.advance_due_shipments(due, self._rules, Context(work.events, now))
                await batch_state.update_shipments(connection, stepped)
                emitted = await work.record_outbox()
        except Exception as error:
            for span in spans:
                mark_failed(span, error)
            raise
        finally:
            for span in spans:
                span.end()
        if emitted and runtime.relay is not None:
            runtime.relay.wake()


def automatic_steps(
    rules: FulfilmentRules,
    *,
    workers: int,
    batch_size: int,
    idle_seconds: float,
    retry_seconds: float,
) -> BackgroundJob:
    async def automatic_mode(runtime: ServiceRuntime) -> None:
        log.info("automatic mode on", workers=workers, delays=str(rules.delays))
        await asyncio.gather(
            *(_work(AutomaticRounds(runtime, rules, batch_size=batch_size)) for _ in range(workers))
        )

    async def _work(rounds: AutomaticRounds) -> None:
        try:
            while True:
                try:
                    outcome = await rounds.run()
                except Exception as error:
                    if is_transient(error):
                        log.warning("automatic mode waits for the database", error=repr(error))
                    else:
                        log.exception("automatic round failed; retrying after a pause")
                    await asyncio.sleep(retry_seconds)
                    continue
                if outcome.failed:
                    await asyncio.sleep(retry_seconds)
                elif outcome.claimed < batch_size:
                    # A full round means more may be due: go on at once.
                    await asyncio.sleep(idle_seconds)
        finally:
            rounds.close()

    return automatic_mode
