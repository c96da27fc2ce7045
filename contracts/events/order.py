"""Order lifecycle facts, emitted by the order service on `oms.order.v1` (key: order id)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from contracts.base import CurrencyCode, Money, OrderEvent, UtcDatetime
from contracts.events.common import (
    Actor,
    Address,
    Channel,
    Customer,
    ExternalOrderId,
    Note,
    OrderLine,
    OrderPricing,
    Reason,
    ReservationId,
    ShippingSpeed,
)
from contracts.events.pricing import TOTAL_FORMULA


class OrderPlaced(OrderPricing, OrderEvent):
    """A submitted order passed every check and now exists under `order_id`. Its amounts
    add up as the field descriptions say; `total_discounts` and `total_tax` are always
    there (zero when none)."""

    channel: Channel
    external_order_id: ExternalOrderId
    customer: Customer
    lines: tuple[OrderLine, ...] = Field(
        min_length=1, max_length=500, description="What was ordered, 1 to 500 lines"
    )
    currency: CurrencyCode
    subtotal: Money = Field(description="Σ lines.line_total: the goods before discounts")
    shipping_charge: Money = Field(
        description="Shipping before its discounts: Σ shipping_lines.price when there are any"
    )
    total: Money = Field(description=f"What the customer pays: {TOTAL_FORMULA}")
    shipping_address: Address | None = Field(
        default=None,
        description="Where to deliver; absent when nothing is delivered (a point-of-sale "
        "sale, an order collected in store): the goods are then handed over at the warehouse",
    )
    shipping_speed: ShippingSpeed
    placed_at: UtcDatetime = Field(description="When the customer placed it in the channel")
    placed_by: Actor | None = Field(
        default=None, description="Sales representative who entered the order (B2B)"
    )
    notes: Note | None = Field(default=None, description="Free-text notes from the customer")


class OrderRejectionCode(StrEnum):
    """Why a submitted order was refused. Each amount is checked against its formula in
    the field descriptions, and the reason names the field and both numbers.

    contract_violation: the submission does not match the inbound contract;
    line_total_mismatch: a line's line_total is not unit_price * quantity, or its
    discounted_total is not line_total less its allocations (or is below zero);
    total_mismatch: subtotal, shipping_charge, total_discounts or total does not add up;
    tax_mismatch: total_tax is not the sum of the tax lines;
    invalid_discount: an allocation names a discount the order does not list, or differs
    from it in kind or title; currency_mismatch: an amount is in another currency than
    the order's; invalid_address: the shipping address breaks its country's rules (a
    postal code missing where the country uses one, or not in its format) or goes to a
    country we do not deliver to; duplicate_line: two lines share a line_id; unknown_sku:
    a line names a SKU the catalogue does not know."""

    CONTRACT_VIOLATION = "contract_violation"
    LINE_TOTAL_MISMATCH = "line_total_mismatch"
    TOTAL_MISMATCH = "total_mismatch"
    TAX_MISMATCH = "tax_mismatch"
    INVALID_DISCOUNT = "invalid_discount"
    CURRENCY_MISMATCH = "currency_mismatch"
    INVALID_ADDRESS = "invalid_address"
    DUPLICATE_LINE = "duplicate_line"
    UNKNOWN_SKU = "unknown_sku"


class OrderRejectionReason(Reason):
    """One thing wrong with a submitted order."""

    code: OrderRejectionCode


class OrderRejected(OrderEvent):
    """A submitted order was refused; nothing was reserved or charged. The channel
    matches it to its submission by (channel, external_order_id)."""

    channel: Channel
    external_order_id: ExternalOrderId
    reasons: tuple[OrderRejectionReason, ...] = Field(
        min_length=1, max_length=100, description="Everything found wrong, not just the first"
    )


class OrderConfirmed(OrderEvent):
    """Stock is reserved for every line: the order will be fulfilled."""

    reservation_id: ReservationId


class CancellationReason(StrEnum):
    """Why an order was cancelled."""

    CUSTOMER_REQUEST = "customer_request"
    OUT_OF_STOCK = "out_of_stock"
    FRAUD = "fraud"
    OTHER = "other"


class OrderCancelled(OrderEvent):
    """The order will not be fulfilled; reserved stock is released, open shipments stop."""

    reason: CancellationReason
    cancelled_by: Actor
    note: Note | None = Field(default=None, description="Free-text detail for people")


class OrderShippingAddressChanged(OrderEvent):
    """Customer service changed where the order goes (only before it ships)."""

    shipping_address: Address = Field(description="The new address, replacing the old one")
    changed_by: Actor


class FinalStatus(StrEnum):
    """How an order ended: delivered and kept, or delivered and (partly) sent back."""

    DELIVERED = "delivered"
    RETURNED = "returned"
    PARTIALLY_RETURNED = "partially_returned"


class OrderCompleted(OrderEvent):
    """Nothing more will happen to the order: delivered, and any return settled."""

    final_status: FinalStatus


EVENTS = (
    OrderPlaced,
    OrderRejected,
    OrderConfirmed,
    OrderCancelled,
    OrderShippingAddressChanged,
    OrderCompleted,
)
