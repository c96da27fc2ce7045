"""Stock facts, emitted by the inventory service on `oms.inventory.v1` (key: order id,
except `LowStockDetected`, which is about a SKU rather than an order)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from contracts.base import ContractModel, Event, OrderEvent, Quantity, Sku
from contracts.events.common import (
    Address,
    Allocation,
    Locale,
    Note,
    ReservationId,
    ReturnId,
    ShipmentId,
    ShippingSpeed,
    SkuQuantity,
    WarehouseId,
)

StockLevel = Annotated[int, Field(ge=0, le=1_000_000_000, description="Units available to reserve")]


class StockReserved(OrderEvent):
    """Every line of the order is held in one or more warehouses.

    Carries what fulfilment needs to ship (address, speed, the customer's locale for the
    packing slip) so that fulfilment depends on no other event to act on it.
    """

    reservation_id: ReservationId
    allocations: tuple[Allocation, ...] = Field(
        min_length=1,
        max_length=5000,
        description="Where each unit is held; a SKU may come from several warehouses",
    )
    shipping_address: Address | None = Field(
        default=None, description="Where to deliver; absent for an order collected in store"
    )
    shipping_speed: ShippingSpeed
    customer_locale: Locale
    notes: Note | None = Field(
        default=None, description="The customer's notes on the order, for the warehouse"
    )


class Shortage(ContractModel):
    """A SKU the order wants more of than there is."""

    sku: Sku
    requested: Quantity
    available: StockLevel


class StockReservationFailed(OrderEvent):
    """Not enough stock for at least one line; nothing was reserved."""

    shortages: tuple[Shortage, ...] = Field(
        min_length=1, max_length=500, description="Every SKU that is short, not just the first"
    )


class StockReleased(OrderEvent):
    """A reservation was given back (order cancelled): the units are available again."""

    reservation_id: ReservationId
    allocations: tuple[Allocation, ...] = Field(
        min_length=1, max_length=5000, description="Everything the reservation held, now free"
    )


class StockCommitted(OrderEvent):
    """Reserved units left the warehouse with a shipment: on-hand stock went down."""

    shipment_id: ShipmentId
    warehouse_id: WarehouseId
    lines: tuple[SkuQuantity, ...] = Field(
        min_length=1, max_length=500, description="Units that left, per SKU"
    )


class StockRestocked(OrderEvent):
    """Returned units passed inspection and are sellable again."""

    return_id: ReturnId
    warehouse_id: WarehouseId
    lines: tuple[SkuQuantity, ...] = Field(
        min_length=1, max_length=500, description="Units back in sellable stock, per SKU"
    )


class LowStockDetected(Event):
    """A SKU's available stock in a warehouse fell to its reorder threshold or below.

    Not about an order: its key and subject are the SKU.
    """

    sku: Sku
    warehouse_id: WarehouseId
    available: StockLevel
    threshold: int = Field(ge=0, le=1_000_000_000, description="The reorder threshold")

    def partition_key(self) -> str:
        return self.sku


EVENTS = (
    StockReserved,
    StockReservationFailed,
    StockReleased,
    StockCommitted,
    StockRestocked,
    LowStockDetected,
)
