"""Valid events for the inventory tests, with only what a test cares about to fill in."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from contracts.base import Money
from contracts.events.common import Address, Customer, OrderLine, ShippingSpeed, SkuQuantity
from contracts.events.fulfilment import Shipped
from contracts.events.order import CancellationReason, OrderCancelled, OrderPlaced
from contracts.events.returns import ReceivedLine, ReturnReceived

UNIT_PRICE = 1_250


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def order_placed(
    order_id: str,
    quantities: Mapping[str, int],
    *,
    country: str | None = "FR",
    locale: str = "fr",
    speed: ShippingSpeed = ShippingSpeed.EXPRESS,
    notes: str | None = None,
) -> OrderPlaced:
    """`country=None`: an order without a shipping address (collected in store)."""
    lines = tuple(
        OrderLine(
            line_id=str(number),
            sku=sku,
            quantity=quantity,
            unit_price=eur(UNIT_PRICE),
            line_total=eur(UNIT_PRICE * quantity),
        )
        for number, (sku, quantity) in enumerate(quantities.items(), start=1)
    )
    subtotal = sum(line.line_total.amount_minor for line in lines)
    return OrderPlaced(
        order_id=order_id,
        channel="webshop",
        external_order_id=f"WS-{order_id}",
        customer=Customer(
            customer_id="cus_1", email="ada@example.com", name="Ada Lovelace", locale=locale
        ),
        lines=lines,
        currency="EUR",
        subtotal=eur(subtotal),
        shipping_charge=eur(500),
        total=eur(subtotal + 500),
        shipping_address=None
        if country is None
        else Address(
            name="Ada Lovelace",
            line1="1 Main Street",
            city="Somewhere",
            postal_code="1000",
            country=country,
        ),
        shipping_speed=speed,
        placed_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        notes=notes,
    )


def order_cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id, reason=CancellationReason.CUSTOMER_REQUEST, cancelled_by="customer"
    )


def shipped(
    order_id: str, warehouse_id: str, quantities: Mapping[str, int], *, shipment_id: str = ""
) -> Shipped:
    return Shipped(
        order_id=order_id,
        shipment_id=shipment_id or unique("shp"),
        warehouse_id=warehouse_id,
        carrier="ups",
        tracking_number=unique("1Z"),
        lines=tuple(SkuQuantity(sku=sku, quantity=n) for sku, n in quantities.items()),
        shipped_at=datetime(2026, 11, 21, 15, 0, tzinfo=UTC),
    )


def return_received(
    order_id: str, warehouse_id: str, lines: Mapping[str, tuple[int, int]]
) -> ReturnReceived:
    """`lines`: sku → (received, restockable)."""
    return ReturnReceived(
        order_id=order_id,
        return_id=unique("rma"),
        warehouse_id=warehouse_id,
        lines=tuple(
            ReceivedLine(sku=sku, quantity=received, restockable_quantity=restockable)
            for sku, (received, restockable) in lines.items()
        ),
    )
