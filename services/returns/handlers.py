"""Consumed events, one use case each: the kit has decoded the events of a batch, claimed
them in the inbox and loaded the batch's state; each use case records its fact in that
state. Of the order topic only OrderPlaced matters here; every other order event is
skipped by the kit unread."""

from __future__ import annotations

from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.order import OrderPlaced
from services.kit.batch import Router
from services.returns import batch_state, service
from services.returns.batch_state import OrderFactsBatch


def router() -> Router[OrderFactsBatch]:
    consumed: Router[OrderFactsBatch] = Router(load=batch_state.load, save=batch_state.save)
    consumed.on(OrderPlaced)(service.record_order_placed)
    consumed.on(Shipped)(service.record_shipped)
    consumed.on(Delivered)(service.record_delivered)
    return consumed
