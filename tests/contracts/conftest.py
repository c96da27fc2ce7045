"""One valid, realistic instance of every event in the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from contracts.base import Event, Money
from contracts.catalogue import TOPICS
from contracts.events.channel import OrderSubmitted
from contracts.events.common import (
    Address,
    Allocation,
    Customer,
    OrderLine,
    ShippingSpeed,
    SkuQuantity,
)
from contracts.events.fulfilment import (
    Delivered,
    Package,
    ShipmentCancellationReason,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentPacked,
    ShipmentReplanned,
    Shipped,
)
from contracts.events.inventory import (
    LowStockDetected,
    Shortage,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockRestocked,
)
from contracts.events.notification import (
    NotificationChannel,
    NotificationFailed,
    NotificationSent,
    NotificationSkipped,
    NotificationSkipReason,
)
from contracts.events.order import (
    CancellationReason,
    FinalStatus,
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderRejectionCode,
    OrderRejectionReason,
    OrderShippingAddressChanged,
)
from contracts.events.pricing import (
    ChannelPayment,
    Discount,
    DiscountAllocation,
    DiscountKind,
    DiscountTarget,
    DiscountValueType,
    PaymentTransaction,
    ShippingLine,
    TaxLine,
)
from contracts.events.returns import (
    ReceivedLine,
    RefundedLine,
    RefundIssued,
    ReturnApproved,
    Returned,
    ReturnReasonCode,
    ReturnReceived,
    ReturnRejected,
    ReturnRejectionCode,
    ReturnRejectionReason,
    ReturnRequested,
    ReturnRequestLine,
)

ORDER_ID = "ord_01HZX3"
AT = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


ADDRESS = Address(
    name="Ada Lovelace",
    line1="12 rue de la Paix",
    city="Paris",
    postal_code="75002",
    country="FR",
    phone="+33 1 23 45 67 89",
)
CUSTOMER = Customer(customer_id="cus_8812", email="ada@example.com", name="Ada", locale="fr-CA")
SPRING10 = Discount(
    discount_id="0",
    kind=DiscountKind.CODE,
    code="SPRING10",
    title="SPRING10",
    value_type=DiscountValueType.PERCENTAGE,
    percentage="10",
    target=DiscountTarget.ORDER,
)


def spring10(amount_minor: int) -> DiscountAllocation:
    return DiscountAllocation(
        amount=eur(amount_minor), discount_id="0", kind=DiscountKind.CODE, title="SPRING10"
    )


def vat(amount_minor: int) -> TaxLine:
    return TaxLine(title="TVA", rate="0.2", amount=eur(amount_minor))


# Prices include 20 % VAT; SPRING10 takes 10 % off the goods, spread across the lines.
LINES = (
    OrderLine(
        line_id="1",
        sku="MUG-RED",
        title="Red mug",
        quantity=2,
        unit_price=eur(1250),
        line_total=eur(2500),
        discount_allocations=(spring10(250),),
        discounted_total=eur(2250),
        tax_lines=(vat(375),),
    ),
    OrderLine(
        line_id="2",
        sku="TEE-M",
        quantity=1,
        unit_price=eur(1999),
        line_total=eur(1999),
        discount_allocations=(spring10(200),),
        discounted_total=eur(1799),
        tax_lines=(vat(300),),
    ),
)
ORDER_FIELDS: dict[str, Any] = dict(
    channel="webshop",
    external_order_id="WS-100234",
    customer=CUSTOMER,
    lines=LINES,
    currency="EUR",
    subtotal=eur(4499),
    shipping_charge=eur(490),
    total=eur(4539),
    shipping_address=ADDRESS,
    shipping_speed=ShippingSpeed.EXPRESS,
    discounts=(SPRING10,),
    shipping_lines=(
        ShippingLine(
            title="Colissimo",
            code="colissimo",
            price=eur(490),
            discounted_price=eur(490),
            tax_lines=(vat(82),),
        ),
    ),
    taxes_included=True,
    total_discounts=eur(450),
    total_tax=eur(757),
    billing_address=ADDRESS,
    payment=ChannelPayment(
        financial_status="paid",
        gateways=("shopify_payments",),
        transactions=(
            PaymentTransaction(
                transaction_id="7300001",
                kind="sale",
                status="success",
                amount=eur(4539),
                gateway="shopify_payments",
            ),
        ),
    ),
)
SHIPPED_LINES = (SkuQuantity(sku="MUG-RED", quantity=2), SkuQuantity(sku="TEE-M", quantity=1))
ALLOCATIONS = (
    Allocation(warehouse_id="wh-paris-1", sku="MUG-RED", quantity=2, warehouse_country="FR"),
    Allocation(warehouse_id="wh-lyon-1", sku="TEE-M", quantity=1, warehouse_country="FR"),
)
NOTIFICATION_FIELDS: dict[str, Any] = dict(
    subject_key=ORDER_ID,
    notification_id="ntf_01HZX7",
    cause_event_id=UUID("01958e5c-3b2a-7c1e-9f00-123456789abc"),
    cause_event_type="oms.Shipped.v1",
    channel=NotificationChannel.EMAIL,
    recipient="ada@example.com",
    template="order_shipped",
    attempts=1,
)


def _samples() -> list[Event]:
    order: dict[str, Any] = {"order_id": ORDER_ID}
    return [
        OrderSubmitted(**ORDER_FIELDS, submitted_at=AT, notes="Leave at the door"),
        OrderPlaced(**order, **ORDER_FIELDS, placed_at=AT, notes="Leave at the door"),
        OrderRejected(
            **order,
            channel="webshop",
            external_order_id="WS-100234",
            reasons=(
                OrderRejectionReason(
                    code=OrderRejectionCode.TOTAL_MISMATCH,
                    field="total",
                    message="total 4990 is not subtotal 4499 + shipping 490",
                ),
            ),
        ),
        OrderConfirmed(**order, reservation_id="res_01HZX4"),
        OrderCancelled(
            **order, reason=CancellationReason.CUSTOMER_REQUEST, cancelled_by="customer"
        ),
        OrderShippingAddressChanged(
            **order,
            shipping_address=ADDRESS.model_copy(update={"city": "Lyon"}),
            changed_by="agent:jdoe",
        ),
        OrderCompleted(**order, final_status=FinalStatus.PARTIALLY_RETURNED),
        StockReserved(
            **order,
            reservation_id="res_01HZX4",
            allocations=ALLOCATIONS,
            shipping_address=ADDRESS,
            shipping_speed=ShippingSpeed.EXPRESS,
            customer_locale="fr-CA",
            notes="Leave at the door",
        ),
        StockReservationFailed(
            **order, shortages=(Shortage(sku="MUG-RED", requested=2, available=1),)
        ),
        StockReleased(**order, reservation_id="res_01HZX4", allocations=ALLOCATIONS),
        StockCommitted(
            **order, shipment_id="shp_01HZX5", warehouse_id="wh-paris-1", lines=SHIPPED_LINES
        ),
        StockRestocked(
            **order, return_id="rma_01HZX6", warehouse_id="wh-paris-1", lines=SHIPPED_LINES[:1]
        ),
        LowStockDetected(sku="MUG-RED", warehouse_id="wh-paris-1", available=3, threshold=5),
        ShipmentCreated(
            **order,
            shipment_id="shp_01HZX5",
            warehouse_id="wh-paris-1",
            lines=SHIPPED_LINES,
            carrier="ups",
            shipping_method="ups_express_saver",
            shipping_cost=eur(730),
            shipping_address=ADDRESS,
            international=False,
            notes="Leave at the door",
        ),
        ShipmentReplanned(
            **order,
            shipment_id="shp_01HZX5",
            warehouse_id="wh-paris-1",
            shipping_address=ADDRESS.model_copy(update={"country": "BE", "postal_code": "1000"}),
            carrier="dhl",
            shipping_method="express",
            shipping_cost=eur(3200),
            international=True,
            previous_carrier="ups",
            previous_shipping_cost=eur(730),
        ),
        ShipmentPacked(
            **order,
            shipment_id="shp_01HZX5",
            packages=(Package(package_id="pkg_1", weight_grams=1250),),
        ),
        Shipped(
            **order,
            shipment_id="shp_01HZX5",
            warehouse_id="wh-paris-1",
            carrier="ups",
            tracking_number="1Z999AA10123456784",
            lines=SHIPPED_LINES,
            shipped_at=AT,
        ),
        Delivered(
            **order,
            shipment_id="shp_01HZX5",
            tracking_number="1Z999AA10123456784",
            delivered_at=AT,
        ),
        ShipmentCancelled(
            **order, shipment_id="shp_01HZX5", reason=ShipmentCancellationReason.ORDER_CANCELLED
        ),
        ReturnRequested(
            **order,
            return_id="rma_01HZX6",
            lines=(
                ReturnRequestLine(sku="MUG-RED", quantity=1, reason_code=ReturnReasonCode.DAMAGED),
            ),
            requested_at=AT,
        ),
        ReturnApproved(
            **order, return_id="rma_01HZX6", label_reference="RL-55821", lines=SHIPPED_LINES[:1]
        ),
        ReturnRejected(
            **order,
            return_id="rma_01HZX7",
            reasons=(
                ReturnRejectionReason(
                    code=ReturnRejectionCode.OUTSIDE_RETURN_WINDOW,
                    message="delivered 45 days ago; the window is 30 days",
                ),
            ),
        ),
        ReturnReceived(
            **order,
            return_id="rma_01HZX6",
            warehouse_id="wh-paris-1",
            lines=(
                ReceivedLine(
                    sku="MUG-RED", quantity=1, restockable_quantity=0, note="handle cracked"
                ),
            ),
        ),
        Returned(**order, return_id="rma_01HZX6", lines=SHIPPED_LINES[:1]),
        RefundIssued(
            **order,
            return_id="rma_01HZX6",
            refund_id="re_3Nx",
            amount=eur(1125),
            lines_amount=eur(1125),
            shipping_refunded=eur(0),
            goods_amount=eur(937),
            tax_amount=eur(188),
            shipping_amount=eur(0),
            lines=(RefundedLine(sku="MUG-RED", quantity=1, amount=eur(1125), tax=eur(188)),),
            policy="refund_shipping_when_fully_returned",
        ),
        NotificationSent(**NOTIFICATION_FIELDS),
        NotificationFailed(
            **NOTIFICATION_FIELDS | {"attempts": 5}, error="550 mailbox unavailable"
        ),
        NotificationSkipped(
            **{k: v for k, v in NOTIFICATION_FIELDS.items() if k not in ("recipient", "attempts")},
            reason=NotificationSkipReason.CUSTOMER_HAS_NO_EMAIL,
        ),
    ]


SAMPLES: dict[type[Event], Event] = {type(event): event for event in _samples()}
CATALOGUED_EVENTS = [event for topic in TOPICS for event in topic.events]


@pytest.fixture(params=CATALOGUED_EVENTS, ids=lambda event: event.__name__)
def any_event(request: pytest.FixtureRequest) -> Event:
    """Each catalogued event in turn (a catalogued event without a sample fails here)."""
    return SAMPLES[request.param]


@pytest.fixture
def order_placed() -> OrderPlaced:
    event = SAMPLES[OrderPlaced]
    assert isinstance(event, OrderPlaced)
    return event
