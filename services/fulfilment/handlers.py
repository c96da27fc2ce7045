"""Consumed events, each handed to one use case (decoding and the inbox are the kit's)."""

from __future__ import annotations

from contracts.base import Event
from contracts.events.inventory import StockReserved
from contracts.events.order import OrderCancelled, OrderShippingAddressChanged
from services.fulfilment import service
from services.fulfilment.service import FulfilmentRules
from services.kit.pipeline import Handler, Routes
from services.kit.unit_of_work import UnitOfWork


def routes(rules: FulfilmentRules) -> Routes:
    async def on_stock_reserved(uow: UnitOfWork, event: Event) -> None:
        assert isinstance(event, StockReserved)
        await service.create_shipments(uow, event, rules)

    async def on_order_cancelled(uow: UnitOfWork, event: Event) -> None:
        assert isinstance(event, OrderCancelled)
        await service.cancel_order_shipments(uow, event)

    async def on_shipping_address_changed(uow: UnitOfWork, event: Event) -> None:
        assert isinstance(event, OrderShippingAddressChanged)
        await service.change_shipping_address(uow, event, rules)

    handlers: dict[type[Event], Handler] = {
        StockReserved: on_stock_reserved,
        OrderCancelled: on_order_cancelled,
        OrderShippingAddressChanged: on_shipping_address_changed,
    }
    return handlers
