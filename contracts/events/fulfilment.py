"""Shipment facts, emitted by the fulfilment service on `oms.fulfilment.v1` (key: order id)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from contracts.base import ContractModel, Identifier, Money, OrderEvent, UtcDatetime
from contracts.events.common import Address, Note, ShipmentId, SkuQuantity, WarehouseId

Carrier = Annotated[
    Identifier, Field(description="Carrier code", examples=["colissimo", "ups", "dhl"])
]
TrackingNumber = Annotated[
    Identifier, Field(description="The carrier's tracking number", examples=["1Z999AA10123456784"])
]


class ShipmentCreated(OrderEvent):
    """A warehouse was asked to pick and pack these lines for the order."""

    shipment_id: ShipmentId
    warehouse_id: WarehouseId
    lines: tuple[SkuQuantity, ...] = Field(
        min_length=1, max_length=500, description="Units to pick and pack, per SKU"
    )
    carrier: Carrier
    shipping_method: Identifier = Field(
        description="The carrier's service level", examples=["ups_express_saver"]
    )
    shipping_cost: Money = Field(description="What the carrier charges us (not the customer)")
    shipping_address: Address | None = Field(
        default=None,
        description="Where the carrier delivers; absent for an order collected at the "
        "warehouse (carrier `pickup`)",
    )
    international: bool | None = Field(
        default=None, description="True when the parcel leaves the warehouse's country"
    )
    notes: Note | None = Field(
        default=None, description="The customer's notes on the order, for the packer"
    )


class ShipmentReplanned(OrderEvent):
    """The order's shipping address changed before this shipment left: it goes to the new
    address, with the carrier, service level and cost planned for it."""

    shipment_id: ShipmentId
    warehouse_id: WarehouseId
    shipping_address: Address = Field(description="The new address")
    carrier: Carrier
    shipping_method: Identifier = Field(description="The carrier's service level")
    shipping_cost: Money = Field(description="What the carrier charges us now")
    international: bool = Field(description="True when the parcel leaves the warehouse's country")
    previous_carrier: Carrier = Field(description="The carrier planned before the change")
    previous_shipping_cost: Money = Field(description="The cost planned before the change")


class Package(ContractModel):
    """One parcel of a shipment."""

    package_id: Identifier = Field(description="Package id", examples=["pkg_1"])
    weight_grams: int = Field(gt=0, le=1_000_000, description="Weight in grams", examples=[1250])


class ShipmentPacked(OrderEvent):
    """The shipment is packed into these parcels and waits for the carrier."""

    shipment_id: ShipmentId
    packages: tuple[Package, ...] = Field(
        min_length=1, max_length=500, description="The parcels, at least one"
    )


class Shipped(OrderEvent):
    """The carrier took the shipment: these units left the warehouse."""

    shipment_id: ShipmentId
    warehouse_id: WarehouseId
    carrier: Carrier
    tracking_number: TrackingNumber
    lines: tuple[SkuQuantity, ...] = Field(
        min_length=1, max_length=500, description="Units that left, per SKU"
    )
    shipped_at: UtcDatetime = Field(description="When the carrier collected it")


class Delivered(OrderEvent):
    """The carrier reports the shipment delivered."""

    shipment_id: ShipmentId
    tracking_number: TrackingNumber
    delivered_at: UtcDatetime = Field(description="When the carrier delivered it")


class ShipmentCancellationReason(StrEnum):
    """Why a shipment was stopped before it left."""

    ORDER_CANCELLED = "order_cancelled"
    ADDRESS_CHANGED = "address_changed"
    OTHER = "other"


class ShipmentCancelled(OrderEvent):
    """A shipment was stopped before it left the warehouse (its units stay reserved unless
    the order is cancelled)."""

    shipment_id: ShipmentId
    reason: ShipmentCancellationReason


EVENTS = (
    ShipmentCreated,
    ShipmentReplanned,
    ShipmentPacked,
    Shipped,
    Delivered,
    ShipmentCancelled,
)
