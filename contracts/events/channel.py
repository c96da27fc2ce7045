"""The inbound contract: what a sales channel publishes to `oms.channel.orders.v1`.

The contract checks shapes and types only. Business rules (the amounts add up as the
formulas in `contracts.events.pricing` say, one currency throughout, no duplicate lines,
known SKUs, an address the country's rules accept) are the order service's to judge: it
answers a submission that breaks them with `OrderRejected`.
"""

from __future__ import annotations

from pydantic import Field

from contracts.base import CurrencyCode, Event, Money, UtcDatetime
from contracts.events.common import (
    Actor,
    Address,
    Channel,
    Customer,
    ExternalOrderId,
    Note,
    OrderLine,
    OrderPricing,
    ShippingSpeed,
)
from contracts.events.pricing import TOTAL_FORMULA


class OrderSubmitted(OrderPricing, Event):
    """A sales channel submitted an order. Submitting the same (channel, external_order_id)
    again is harmless: the order service places each one once."""

    channel: Channel
    external_order_id: ExternalOrderId
    customer: Customer
    lines: tuple[OrderLine, ...] = Field(
        min_length=1, max_length=500, description="What was ordered, 1 to 500 lines"
    )
    currency: CurrencyCode
    subtotal: Money = Field(description="Σ lines.line_total: the goods before discounts")
    shipping_charge: Money = Field(
        description="Shipping before its discounts: Σ shipping_lines.price when they are sent"
    )
    total: Money = Field(description=f"What the customer pays: {TOTAL_FORMULA}")
    shipping_address: Address | None = Field(
        default=None,
        description="Where to deliver; absent when nothing is delivered (a point-of-sale "
        "sale, an order collected in store): the goods are then handed over at the warehouse",
    )
    shipping_speed: ShippingSpeed
    submitted_at: UtcDatetime = Field(description="When the customer placed it in the channel")
    placed_by: Actor | None = Field(
        default=None,
        description="Sales representative who entered the order (B2B channel)",
        examples=["rep:jdoe"],
    )
    notes: Note | None = Field(default=None, description="Free-text notes from the customer")

    def partition_key(self) -> str:
        # Before the order service assigns an order id, the channel's own id is the
        # identity: retries of one submission land on one partition, in order.
        return f"{self.channel}:{self.external_order_id}"


EVENTS = (OrderSubmitted,)
