"""Consumed events, each applied by its use case to the batch's state (decoding, the inbox
and the outbox are the kit's)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from contracts.base import Event
from contracts.events.fulfilment import Shipped
from contracts.events.order import OrderCancelled, OrderPlaced
from contracts.events.returns import ReturnReceived
from services.inventory import batch_state, service
from services.inventory.batch_state import InventoryBatch
from services.inventory.service import StockPolicy
from services.kit.batch import Router


def router(policy: StockPolicy) -> Router[InventoryBatch]:
    async def load(connection: asyncpg.Connection, events: Sequence[Event]) -> InventoryBatch:
        return await batch_state.load(
            connection, events, default_threshold=policy.default_low_stock_threshold
        )

    inventory: Router[InventoryBatch] = Router(load=load, save=batch_state.save)
    inventory.on(OrderPlaced)(service.reserve_for_order)
    inventory.on(OrderCancelled)(service.release_for_cancelled_order)
    inventory.on(Shipped)(service.commit_shipment)
    inventory.on(ReturnReceived)(service.restock_return)
    return inventory
