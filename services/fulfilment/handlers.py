"""Consumed events, each handed to one use case (decoding, the inbox and the batch's
transaction are the kit's; loading and saving the batch's state are `batch_state`'s)."""

from __future__ import annotations

from contracts.events.inventory import StockReserved
from contracts.events.order import OrderCancelled, OrderShippingAddressChanged
from services.fulfilment import batch_state, service
from services.fulfilment.batch_state import BatchState
from services.fulfilment.service import FulfilmentRules
from services.kit.batch import Context, Router


def router(rules: FulfilmentRules) -> Router[BatchState]:
    events: Router[BatchState] = Router(load=batch_state.load, save=batch_state.save)

    @events.on(StockReserved)
    def on_stock_reserved(state: BatchState, event: StockReserved, context: Context) -> None:
        service.create_shipments(state, event, context, rules)

    events.on(OrderCancelled)(service.cancel_order_shipments)

    @events.on(OrderShippingAddressChanged)
    def on_shipping_address_changed(
        state: BatchState, event: OrderShippingAddressChanged, context: Context
    ) -> None:
        service.change_shipping_address(state, event, context, rules)

    return events
