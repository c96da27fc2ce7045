"""Consumed events, each handed to one use case (decoding and the inbox are the kit's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from contracts.base import Event
from contracts.events.fulfilment import Shipped
from contracts.events.order import OrderCancelled, OrderPlaced
from contracts.events.returns import ReturnReceived
from services.inventory import service
from services.inventory.service import StockPolicy
from services.kit.pipeline import Handler, Routes
from services.kit.unit_of_work import UnitOfWork

E = TypeVar("E", bound=Event)


def routes(policy: StockPolicy) -> Routes:
    async def on_order_placed(uow: UnitOfWork, event: OrderPlaced) -> None:
        await service.reserve_for_order(uow, event, policy)

    async def on_order_cancelled(uow: UnitOfWork, event: OrderCancelled) -> None:
        await service.release_for_cancelled_order(uow, event)

    async def on_shipped(uow: UnitOfWork, event: Shipped) -> None:
        await service.commit_shipment(uow, event, policy)

    async def on_return_received(uow: UnitOfWork, event: ReturnReceived) -> None:
        await service.restock_return(uow, event)

    return dict(
        [
            _route(OrderPlaced, on_order_placed),
            _route(OrderCancelled, on_order_cancelled),
            _route(Shipped, on_shipped),
            _route(ReturnReceived, on_return_received),
        ]
    )


def _route(
    event_class: type[E], handle: Callable[[UnitOfWork, E], Awaitable[None]]
) -> tuple[type[Event], Handler]:
    """The kit routes by exact event class, so the narrowing below always holds."""

    async def handler(uow: UnitOfWork, event: Event) -> None:
        if not isinstance(event, event_class):
            raise TypeError(f"{type(event).__name__} routed to the {event_class.__name__} handler")
        await handle(uow, event)

    return event_class, handler
