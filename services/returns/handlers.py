"""Consumed events, one thin handler each: the kit has decoded the event and opened the
unit of work; the handler calls one use case. Of the order topic only OrderPlaced
matters here; every other order event is skipped by the kit."""

from __future__ import annotations

from contracts.base import Event
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.order import OrderPlaced
from services.kit.pipeline import Routes
from services.kit.unit_of_work import UnitOfWork
from services.returns import service


async def on_order_placed(uow: UnitOfWork, event: Event) -> None:
    assert isinstance(event, OrderPlaced)
    await service.record_order_placed(uow, event)


async def on_shipped(uow: UnitOfWork, event: Event) -> None:
    assert isinstance(event, Shipped)
    await service.record_shipped(uow, event)


async def on_delivered(uow: UnitOfWork, event: Event) -> None:
    assert isinstance(event, Delivered)
    await service.record_delivered(uow, event)


def routes() -> Routes:
    return {
        OrderPlaced: on_order_placed,
        Shipped: on_shipped,
        Delivered: on_delivered,
    }
