"""The steps the order service's HTTP commands and background job share, in their unit of
work: a status change with its history, and an emitted event with its timeline entry.
(Consumed batches take the same steps in memory: `services.order.batch_state`.)"""

from __future__ import annotations

from contracts.base import OrderEvent
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork
from services.order import db, timeline
from services.order.domain import Transition
from services.order.rows import ChangeCause, StatusChange

log = get_logger(__name__)


class InconsistentOrderState(RuntimeError):
    """The database contradicts itself about an order (a bug, never expected)."""


async def apply(uow: UnitOfWork, order_id: str, change: Transition, cause: ChangeCause) -> None:
    """Moves the order (locked by the caller) and writes its status history."""
    moved = await db.change_status(
        uow.connection,
        StatusChange(order_id, change.from_status.value, change.to_status.value, cause),
    )
    if not moved:
        raise InconsistentOrderState(f"{order_id} left {change.from_status} while locked")
    log.info(
        "order status changed",
        order_id=order_id,
        from_status=change.from_status.value,
        to_status=change.to_status.value,
    )


async def emit(uow: UnitOfWork, event: OrderEvent) -> None:
    """Every event the order service emits is also an entry of the order's timeline."""
    uow.emit(event)
    await record_entry(uow, event.order_id, timeline.entry(event))


async def record_entry(uow: UnitOfWork, order_id: str, entry: timeline.Entry) -> None:
    await db.insert_timeline_entry(uow.connection, order_id, entry)
