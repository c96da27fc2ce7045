"""Completing orders nothing more can happen to (the background job's use case)."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.events.order import FinalStatus, OrderCompleted
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork
from services.order import changes, db, domain
from services.order.domain import OrderStatus

log = get_logger(__name__)


async def complete_due_orders(
    uow: UnitOfWork, *, now: datetime, return_window: timedelta, batch_size: int
) -> int:
    """Completes the orders nothing more can happen to; returns how many."""
    candidates = await db.lock_completion_candidates(
        uow.connection, delivered_before=now - return_window, limit=batch_size
    )
    completed = 0
    for order in candidates:
        final_status = domain.completion(
            OrderStatus(order.status),
            delivered_at=order.delivered_at,
            completed=order.completed_at is not None,
            now=now,
            return_window=return_window,
        )
        if final_status is None:
            continue
        if await db.mark_completed(uow.connection, order.order_id, final_status.value, now):
            await changes.emit(
                uow,
                OrderCompleted(
                    order_id=order.order_id, final_status=FinalStatus(final_status.value)
                ),
            )
            log.info("order completed", order_id=order.order_id, final=final_status.value)
            completed += 1
    return completed
