"""The automatic mode, for demos and benchmarks: a background job that plays the
warehouse and the carrier, taking each shipment's next step once it is due.

Its whole state is the shipments' `next_step_at` in the database, so it carries on after
a restart; replicas share the work without ever stepping one shipment twice
(`FOR UPDATE SKIP LOCKED`); a database outage pauses it, never ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from services.fulfilment import service
from services.fulfilment.service import FulfilmentRules
from services.kit.errors import is_transient
from services.kit.logs import get_logger
from services.kit.runtime import ServiceRuntime

log = get_logger(__name__)

BackgroundJob = Callable[[ServiceRuntime], Coroutine[Any, Any, None]]


def automatic_steps(
    rules: FulfilmentRules, *, workers: int, idle_seconds: float, retry_seconds: float
) -> BackgroundJob:
    async def advance_due_shipments(runtime: ServiceRuntime) -> None:
        log.info("automatic mode on", workers=workers, delays=str(rules.delays))
        await asyncio.gather(*(_work(runtime) for _ in range(workers)))

    async def _work(runtime: ServiceRuntime) -> None:
        while True:
            try:
                # One unit of work per step: a failure loses at most that step, retried.
                async with runtime.unit_of_work() as uow:
                    stepped = await service.advance_next_due_shipment(uow, rules)
            except Exception as error:
                if is_transient(error):
                    log.warning("automatic mode waits for the database", error=repr(error))
                else:
                    log.exception("automatic step failed; retrying after a pause")
                await asyncio.sleep(retry_seconds)
                continue
            if not stepped:
                await asyncio.sleep(idle_seconds)

    return advance_due_shipments
