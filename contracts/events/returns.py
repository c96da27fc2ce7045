"""Return facts, emitted by the returns service on `oms.returns.v1` (key: order id)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from contracts.base import ContractModel, Identifier, Money, OrderEvent, Quantity, Sku, UtcDatetime
from contracts.events.common import Note, Reason, ReturnId, SkuQuantity, WarehouseId


class ReturnReasonCode(StrEnum):
    """Why the customer sends an item back."""

    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    NO_LONGER_NEEDED = "no_longer_needed"
    OTHER = "other"


class ReturnRequestLine(ContractModel):
    """Units of one SKU the customer wants to send back, and why."""

    sku: Sku
    quantity: Quantity
    reason_code: ReturnReasonCode


class ReturnRequested(OrderEvent):
    """The customer asked to return part or all of a delivered order."""

    return_id: ReturnId
    lines: tuple[ReturnRequestLine, ...] = Field(
        min_length=1, max_length=500, description="What the customer wants to send back"
    )
    requested_at: UtcDatetime = Field(description="When the customer asked")


class ReturnApproved(OrderEvent):
    """The return is accepted; the customer gets a label to send these units back."""

    return_id: ReturnId
    label_reference: Identifier = Field(
        description="The carrier's return label reference", examples=["RL-55821"]
    )
    lines: tuple[SkuQuantity, ...] = Field(
        min_length=1, max_length=500, description="Units approved for return, per SKU"
    )


class ReturnRejectionCode(StrEnum):
    """Why a return was refused. outside_return_window: asked too late; not_delivered:
    nothing of the order was delivered yet; quantity_exceeds_delivered: more units than were
    delivered (or already returned); unknown_sku: a SKU that is not in the order; other: see
    the message."""

    OUTSIDE_RETURN_WINDOW = "outside_return_window"
    NOT_DELIVERED = "not_delivered"
    QUANTITY_EXCEEDS_DELIVERED = "quantity_exceeds_delivered"
    UNKNOWN_SKU = "unknown_sku"
    OTHER = "other"


class ReturnRejectionReason(Reason):
    """One reason a return request was refused."""

    code: ReturnRejectionCode


class ReturnRejected(OrderEvent):
    """The return request was refused; nothing is to be sent back."""

    return_id: ReturnId
    reasons: tuple[ReturnRejectionReason, ...] = Field(
        min_length=1, max_length=100, description="Everything found wrong, not just the first"
    )


class ReceivedLine(ContractModel):
    """Units of one SKU that arrived back, and how many of them can be sold again."""

    sku: Sku
    quantity: Quantity
    restockable_quantity: int = Field(
        ge=0, le=1_000_000, description="How many passed inspection (0 to quantity)"
    )
    note: Note | None = Field(default=None, description="The inspector's remarks")

    @model_validator(mode="after")
    def _restockable_within_received(self) -> ReceivedLine:
        if self.restockable_quantity > self.quantity:
            raise ValueError(
                f"restockable_quantity ({self.restockable_quantity}) exceeds "
                f"quantity ({self.quantity})"
            )
        return self


class ReturnReceived(OrderEvent):
    """The warehouse received and inspected the returned parcel."""

    return_id: ReturnId
    warehouse_id: WarehouseId
    lines: tuple[ReceivedLine, ...] = Field(
        min_length=1, max_length=500, description="What arrived, per SKU, and its inspection"
    )


class Returned(OrderEvent):
    """The return is settled: these units count as returned."""

    return_id: ReturnId
    lines: tuple[SkuQuantity, ...] = Field(
        min_length=1, max_length=500, description="Units returned, per SKU"
    )


class RefundedLine(ContractModel):
    """What one returned SKU gives back: its share of what the customer paid for it."""

    sku: Sku
    quantity: Quantity
    amount: Money = Field(
        description="The units' share of what was paid for their line: after discounts, "
        "with its tax (so tax included, whether or not the order's prices were)"
    )
    tax: Money = Field(description="The tax within amount")


class RefundIssued(OrderEvent):
    """Money went back to the customer for a return. Two breakdowns of one amount:
    amount = lines_amount + shipping_refunded = goods_amount + tax_amount + shipping_amount.
    A returned unit refunds its share of what was paid (after discounts, with its tax),
    never its list price."""

    return_id: ReturnId
    refund_id: Identifier = Field(description="The refund's id")
    amount: Money = Field(description="Total refunded")
    lines_amount: Money = Field(
        description="Refunded for the returned units, tax included: Σ lines.amount"
    )
    shipping_refunded: Money = Field(
        description="Refunded of what was paid for shipping, tax included"
    )
    goods_amount: Money | None = Field(
        default=None, description="Refunded for the goods, net of tax: Σ lines.(amount - tax)"
    )
    tax_amount: Money | None = Field(
        default=None, description="Tax refunded, of the goods and of the shipping"
    )
    shipping_amount: Money | None = Field(
        default=None, description="Refunded for shipping, net of tax"
    )
    lines: tuple[RefundedLine, ...] = Field(
        default=(), max_length=500, description="The refund of each returned SKU"
    )
    policy: Identifier = Field(
        description="Which shipping-refund policy applied",
        examples=[
            "paid_share_of_lines.paid_shipping_once_on_merchant_fault_or_full_return:merchant_fault"
        ],
    )


EVENTS = (
    ReturnRequested,
    ReturnApproved,
    ReturnRejected,
    ReturnReceived,
    Returned,
    RefundIssued,
)
