"""Realistic events the notification service consumes, one builder each."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.base import Money
from contracts.events.common import Address, Customer, OrderLine, ShippingSpeed, SkuQuantity
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.inventory import LowStockDetected, Shortage, StockReservationFailed
from contracts.events.order import CancellationReason, OrderCancelled, OrderPlaced
from contracts.events.returns import (
    RefundIssued,
    ReturnApproved,
    ReturnRejected,
    ReturnRejectionCode,
    ReturnRejectionReason,
)

SHIPPED_AT = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
DELIVERED_AT = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def order_placed(
    order_id: str, *, locale: str = "en", email: str = "ada@example.com"
) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        channel="webshop",
        external_order_id=f"WS-{order_id}",
        customer=Customer(customer_id="cus_1", email=email, name="Ada Lovelace", locale=locale),
        lines=(
            OrderLine(
                line_id="1",
                sku="MUG-01",
                quantity=2,
                unit_price=eur(1250),
                line_total=eur(2500),
            ),
            OrderLine(
                line_id="2", sku="TEA-02", quantity=1, unit_price=eur(734), line_total=eur(734)
            ),
        ),
        currency="EUR",
        subtotal=eur(3234),
        shipping_charge=eur(499),
        total=eur(3733),
        shipping_address=Address(
            name="Ada Lovelace",
            line1="12 rue de la Paix",
            city="Paris",
            postal_code="75002",
            country="FR",
        ),
        shipping_speed=ShippingSpeed.STANDARD,
        placed_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )


def order_cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id, reason=CancellationReason.OUT_OF_STOCK, cancelled_by="system"
    )


def shipped(order_id: str) -> Shipped:
    return Shipped(
        order_id=order_id,
        shipment_id=f"shp_{order_id}",
        warehouse_id="wh-paris-1",
        carrier="colissimo",
        tracking_number="6A12345678901",
        lines=(SkuQuantity(sku="MUG-01", quantity=2),),
        shipped_at=SHIPPED_AT,
    )


def delivered(order_id: str) -> Delivered:
    return Delivered(
        order_id=order_id,
        shipment_id=f"shp_{order_id}",
        tracking_number="6A12345678901",
        delivered_at=DELIVERED_AT,
    )


def return_approved(order_id: str) -> ReturnApproved:
    return ReturnApproved(
        order_id=order_id,
        return_id="rma_77",
        label_reference="RL-55821",
        lines=(SkuQuantity(sku="MUG-01", quantity=1),),
    )


def return_rejected(order_id: str) -> ReturnRejected:
    return ReturnRejected(
        order_id=order_id,
        return_id="rma_78",
        reasons=(
            ReturnRejectionReason(
                code=ReturnRejectionCode.OUTSIDE_RETURN_WINDOW, message="asked after 30 days"
            ),
        ),
    )


def refund_issued(order_id: str, amount_minor: int = 123456) -> RefundIssued:
    return RefundIssued(
        order_id=order_id,
        return_id="rma_77",
        refund_id="re_1",
        amount=eur(amount_minor),
        lines_amount=eur(amount_minor),
        shipping_refunded=eur(0),
        policy="no_shipping_refund",
    )


def low_stock(sku: str = "MUG-01") -> LowStockDetected:
    return LowStockDetected(sku=sku, warehouse_id="wh-paris-1", available=3, threshold=5)


def stock_reservation_failed(order_id: str) -> StockReservationFailed:
    return StockReservationFailed(
        order_id=order_id,
        shortages=(Shortage(sku="MUG-01", requested=2, available=0),),
    )
