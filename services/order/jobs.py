"""The order service's background job: completing orders nothing more can happen to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from services.kit.logs import get_logger
from services.kit.runtime import ServiceRuntime
from services.order import completion

log = get_logger(__name__)


def order_completion(
    *, return_window: timedelta, interval_seconds: float, batch_size: int
) -> Callable[[ServiceRuntime], Coroutine[Any, Any, None]]:
    async def complete_orders(runtime: ServiceRuntime) -> None:
        while True:
            completed = 0
            try:
                async with runtime.unit_of_work() as uow:
                    completed = await completion.complete_due_orders(
                        uow,
                        now=datetime.now(UTC),
                        return_window=return_window,
                        batch_size=batch_size,
                    )
            except Exception as error:
                # The job lives as long as the service: a database outage (or a bug) must
                # not end it silently; the next round tries again.
                log.error("order completion round failed", error=repr(error))
            # A full batch means more are due: go on at once.
            if completed < batch_size:
                await asyncio.sleep(interval_seconds)

    return complete_orders
