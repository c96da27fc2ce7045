"""Realistic events the notification service consumes, one builder each."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.base import Money
from contracts.events.common import Address, Customer, OrderLine, ShippingSpeed, SkuQuantity
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.inventory import LowStockDetected, Shortage, StockReservationFailed
from contracts.events.order import CancellationReason, OrderCancelled, OrderPlaced
from contracts.events.pricing import (
    Charge,
    ChargeKind,
    Discount,
    DiscountAllocation,
    DiscountKind,
    DiscountTarget,
    DiscountValueType,
    ShippingLine,
    TaxLine,
)
from contracts.events.returns import (
    RefundedLine,
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


PARIS = Address(
    name="Ada Lovelace",
    line1="12 rue de la Paix",
    city="Paris",
    postal_code="75002",
    country="FR",
)


def order_placed(
    order_id: str, *, locale: str = "en", email: str | None = "ada@example.com"
) -> OrderPlaced:
    """An order of the contract's first version: no discounts, no tax."""
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
        shipping_address=PARIS,
        shipping_speed=ShippingSpeed.STANDARD,
        placed_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )


def point_of_sale_order(order_id: str) -> OrderPlaced:
    """Sold at the counter: no customer e-mail or name, nothing to deliver."""
    return order_placed(order_id).model_copy(
        update={
            "channel": "pos",
            "customer": Customer(locale="fr"),
            "shipping_address": None,
            "shipping_charge": eur(0),
            "total": eur(3234),
        }
    )


def _allocation(amount: Money, discount: Discount) -> DiscountAllocation:
    return DiscountAllocation(
        amount=amount, discount_id=discount.discount_id, kind=discount.kind, title=discount.title
    )


def discounted_order(order_id: str, *, taxes_included: bool, locale: str = "en") -> OrderPlaced:
    """Two lines, one with a discount of its own; a 10 % code spread over both lines;
    free shipping by an automatic discount; a tip; 20 % tax on the goods and shipping,
    in the prices (as a European shop sends them) or on top (as most of North America).

    Chair: 2 at 25.00 = 50.00, less 5.00 (Loyal customer) and 4.50 (SPRING10) = 40.50.
    Tea: 1 at 7.34, less 0.73 (SPRING10) = 6.61. Shipping 4.99, less 4.99 = 0. Tip 2.00.
    Tax included: 6.75 + 1.10 = 7.85, total 40.50 + 6.61 + 2.00 = 49.11.
    Tax on top: 8.10 + 1.32 = 9.42, total 49.11 + 9.42 = 58.53.
    """
    loyal = Discount(
        discount_id="0",
        kind=DiscountKind.MANUAL,
        title="Loyal customer",
        value_type=DiscountValueType.FIXED_AMOUNT,
        amount=eur(500),
        target=DiscountTarget.LINE,
    )
    spring = Discount(
        discount_id="1",
        kind=DiscountKind.CODE,
        code="SPRING10",
        title="SPRING10",
        value_type=DiscountValueType.PERCENTAGE,
        percentage="10",
        target=DiscountTarget.ORDER,
    )
    free_shipping = Discount(
        discount_id="2",
        kind=DiscountKind.AUTOMATIC,
        title="Free shipping over €40",
        value_type=DiscountValueType.PERCENTAGE,
        percentage="100",
        target=DiscountTarget.SHIPPING,
    )
    chair_tax, tea_tax = (675, 110) if taxes_included else (810, 132)
    total = 4911 if taxes_included else 4911 + chair_tax + tea_tax
    return OrderPlaced(
        order_id=order_id,
        channel="shopify",
        external_order_id=f"SH-{order_id}",
        customer=Customer(customer_id="cus_2", email="ada@example.com", name="Ada", locale=locale),
        lines=(
            OrderLine(
                line_id="1",
                sku="CHAIR-OAK",
                title="Oak chair",
                quantity=2,
                unit_price=eur(2500),
                line_total=eur(5000),
                discount_allocations=(
                    _allocation(eur(500), loyal),
                    _allocation(eur(450), spring),
                ),
                discounted_total=eur(4050),
                tax_lines=(TaxLine(title="VAT", rate="0.2", amount=eur(chair_tax)),),
            ),
            OrderLine(
                line_id="2",
                sku="TEA-02",
                quantity=1,
                unit_price=eur(734),
                line_total=eur(734),
                discount_allocations=(_allocation(eur(73), spring),),
                discounted_total=eur(661),
                tax_lines=(TaxLine(title="VAT", rate="0.2", amount=eur(tea_tax)),),
            ),
        ),
        discounts=(loyal, spring, free_shipping),
        shipping_lines=(
            ShippingLine(
                title="Standard",
                price=eur(499),
                discount_allocations=(_allocation(eur(499), free_shipping),),
                discounted_price=eur(0),
            ),
        ),
        charges=(Charge(kind=ChargeKind.TIP, title="Tip", amount=eur(200)),),
        taxes_included=taxes_included,
        total_discounts=eur(500 + 450 + 73 + 499),
        total_tax=eur(chair_tax + tea_tax),
        currency="EUR",
        subtotal=eur(5734),
        shipping_charge=eur(499),
        total=eur(total),
        shipping_address=PARIS,
        shipping_speed=ShippingSpeed.STANDARD,
        placed_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )


def yen(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="JPY")


def yen_order(order_id: str, *, locale: str = "en") -> OrderPlaced:
    """3 at ¥1,500 less ¥500, shipping ¥600 with 10 % consumption tax in the prices, to a
    Hong Kong address (no postcode, no city)."""
    welcome = Discount(
        discount_id="0",
        kind=DiscountKind.CODE,
        code="WELCOME",
        title="WELCOME",
        value_type=DiscountValueType.FIXED_AMOUNT,
        amount=yen(500),
        target=DiscountTarget.ORDER,
    )
    return OrderPlaced(
        order_id=order_id,
        channel="shopify",
        external_order_id=f"SH-{order_id}",
        customer=Customer(email="chan@example.com", name="Chan Tai Man", locale=locale),
        lines=(
            OrderLine(
                line_id="1",
                sku="MATCHA-30G",
                title="Matcha 30 g",
                quantity=3,
                unit_price=yen(1500),
                line_total=yen(4500),
                discount_allocations=(_allocation(yen(500), welcome),),
                discounted_total=yen(4000),
                tax_lines=(TaxLine(title="Consumption tax", rate="0.1", amount=yen(364)),),
            ),
        ),
        discounts=(welcome,),
        shipping_lines=(
            ShippingLine(
                title="EMS",
                price=yen(600),
                tax_lines=(TaxLine(title="Consumption tax", rate="0.1", amount=yen(55)),),
            ),
        ),
        taxes_included=True,
        total_discounts=yen(500),
        total_tax=yen(419),
        currency="JPY",
        subtotal=yen(4500),
        shipping_charge=yen(600),
        total=yen(4600),
        shipping_address=Address(
            name="Chan Tai Man", line1="Flat 5, 12 Nathan Road", region="Kowloon", country="HK"
        ),
        shipping_speed=ShippingSpeed.EXPRESS,
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


def refund_with_breakdown(order_id: str) -> RefundIssued:
    """One oak chair of the taxed order back (its paid share, 20.25 with 3.38 of VAT),
    and its shipping (4.99, 0.83 of VAT)."""
    return RefundIssued(
        order_id=order_id,
        return_id="rma_79",
        refund_id="re_2",
        amount=eur(2524),
        lines_amount=eur(2025),
        shipping_refunded=eur(499),
        goods_amount=eur(1687),
        tax_amount=eur(421),
        shipping_amount=eur(416),
        lines=(RefundedLine(sku="CHAIR-OAK", quantity=1, amount=eur(2025), tax=eur(338)),),
        policy="refund_shipping_when_fully_returned",
    )


def low_stock(sku: str = "MUG-01") -> LowStockDetected:
    return LowStockDetected(sku=sku, warehouse_id="wh-paris-1", available=3, threshold=5)


def stock_reservation_failed(order_id: str) -> StockReservationFailed:
    return StockReservationFailed(
        order_id=order_id,
        shortages=(Shortage(sku="MUG-01", requested=2, available=0),),
    )
