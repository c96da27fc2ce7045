"""The inbound contract: what a sales channel publishes to `oms.channel.orders.v1`.

The contract checks shapes and types only. Business rules (line totals and the order
total add up, one currency throughout, no duplicate lines, known SKUs) are the order
service's to judge: it answers a submission that breaks them with `OrderRejected`.
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
    ShippingSpeed,
)


class OrderSubmitted(Event):
    """A sales channel submitted an order. Submitting the same (channel, external_order_id)
    again is harmless: the order service places each one once."""

    channel: Channel
    external_order_id: ExternalOrderId
    customer: Customer
    lines: tuple[OrderLine, ...] = Field(
        min_length=1, max_length=500, description="What was ordered, 1 to 500 lines"
    )
    currency: CurrencyCode
    subtotal: Money = Field(description="Sum of the line totals")
    shipping_charge: Money = Field(description="What the customer pays for shipping")
    total: Money = Field(description="subtotal + shipping_charge: what the customer pays")
    shipping_address: Address
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
