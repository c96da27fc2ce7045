"""The money of an order: discounts, taxes, shipping lines, other charges and the channel's
payment facts, as `OrderSubmitted` and `OrderPlaced` carry them.

Every amount is integer minor units of the order's currency. Each formula below is also
in the field descriptions, so that an ERP can post revenue, discounts, shipping and tax
from `OrderPlaced` alone:

- a line: `line_total = unit_price * quantity` (before discounts);
  `discounted_total = line_total - Σ discount_allocations.amount`;
- a shipping line: `discounted_price = price - Σ discount_allocations.amount`;
- the order: `subtotal = Σ lines.line_total`;
  `total_discounts = Σ every discount allocation, of lines and of shipping lines`;
  `shipping_charge = Σ shipping_lines.price` (before discounts);
  `total_tax = Σ every tax line, of lines, shipping lines and charges`;
  `total = subtotal - total_discounts + shipping_charge + Σ charges.amount
  + (0 when taxes_included, else total_tax)`.

Prices include tax when the order says `taxes_included` (European shops, usually), and
exclude it otherwise (tax is then added on top, as in most of North America).

Lists, enumerations and times nested here are also read from Python objects as JSON
gives them (a list, a string: `strict=False`), because an HTTP request body reaches the
models that way; everything else stays strict.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from contracts.base import ContractModel, Identifier, Money, UtcDatetime

TOTAL_FORMULA = (
    "subtotal - total_discounts + shipping_charge + Σ charges.amount "
    "+ (0 when taxes_included, else total_tax)"
)

Title = Annotated[str, Field(min_length=1, max_length=255)]
TaxRate = Annotated[
    str,
    Field(
        pattern=r"^(0(\.[0-9]{1,12})?|1(\.0{1,12})?)$",
        description="Tax rate as a decimal fraction written as text, so it stays exact: "
        '"0.2" is 20 %, "0.0725" is 7.25 %',
        examples=["0.2", "0.0725"],
    ),
]
Percentage = Annotated[
    str,
    Field(
        pattern=r"^(100(\.0{1,6})?|[0-9]{1,2}(\.[0-9]{1,6})?)$",
        description='A percentage written as text, so it stays exact: "10" is 10 %',
        examples=["10", "12.5"],
    ),
]
GatewayName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="Payment gateway or method as the channel names it",
        examples=["shopify_payments", "manual", "gift_card"],
    ),
]
Code = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="A lower-case code as the channel spells it",
    ),
]


class DiscountKind(StrEnum):
    """Where a discount came from: `code`, a code the customer entered; `automatic`, a
    rule of the channel that applied by itself (Shopify scripts and functions too);
    `manual`, one staff gave by hand (a draft or point-of-sale order)."""

    CODE = "code"
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class DiscountValueType(StrEnum):
    """How the discount is stated: an amount off, or a percentage off."""

    FIXED_AMOUNT = "fixed_amount"
    PERCENTAGE = "percentage"


class DiscountTarget(StrEnum):
    """What a discount applies to: `line`, chosen lines; `order`, every line (the amount
    is spread across them); `shipping`, the shipping lines."""

    LINE = "line"
    ORDER = "order"
    SHIPPING = "shipping"


class Discount(ContractModel):
    """A discount applied to the order. What it took off each line or shipping line is
    in that line's `discount_allocations`, which name it by `discount_id`; the discount's
    total is the sum of those allocations."""

    discount_id: Identifier = Field(
        description="Id of the discount within the order; allocations refer to it",
        examples=["0"],
    )
    kind: DiscountKind = Field(strict=False)
    code: Title | None = Field(
        default=None, description="The code entered, for a `code` discount", examples=["SPRING10"]
    )
    title: Title = Field(
        description="What the customer was shown: the code, or the discount's name",
        examples=["SPRING10", "Buy 2, save 5 %"],
    )
    value_type: DiscountValueType = Field(strict=False)
    percentage: Percentage | None = Field(
        default=None, description="The percentage off, for a `percentage` discount"
    )
    amount: Money | None = Field(
        default=None,
        description="The amount off as the discount states it, for a `fixed_amount` discount "
        "(what it took off in all is the sum of its allocations)",
    )
    target: DiscountTarget = Field(strict=False)

    @model_validator(mode="after")
    def _value_matches_its_type(self) -> Discount:
        if self.value_type is DiscountValueType.PERCENTAGE and self.percentage is None:
            raise ValueError("a percentage discount needs `percentage`")
        if self.value_type is DiscountValueType.FIXED_AMOUNT and self.amount is None:
            raise ValueError("a fixed_amount discount needs `amount`")
        return self


class DiscountAllocation(ContractModel):
    """What one discount took off one line or shipping line."""

    amount: Money = Field(description="Taken off this line, in all (not per unit)")
    discount_id: Identifier | None = Field(
        default=None,
        description="The order's discount this comes from (`discounts[].discount_id`); "
        "absent for a discount that exists only on this line",
    )
    kind: DiscountKind = Field(
        strict=False, description="The discount's kind (the same as the discount's)"
    )
    title: Title = Field(
        description="The discount's title or code (the same as the discount's)",
        examples=["SPRING10"],
    )


class TaxLine(ContractModel):
    """One tax on a line, a shipping line or a charge."""

    title: Title = Field(description="Name of the tax", examples=["VAT", "CA State Tax"])
    rate: TaxRate
    amount: Money = Field(
        description="Tax on this line, in all; contained in the price when the order's "
        "`taxes_included`, added on top otherwise"
    )


class ShippingLine(ContractModel):
    """One shipping method the customer paid for."""

    title: Title = Field(description="Shipping method as shown", examples=["Standard"])
    code: Title | None = Field(default=None, description="The channel's code for the method")
    price: Money = Field(description="Price of the shipping before discounts")
    discount_allocations: tuple[DiscountAllocation, ...] = Field(
        default=(), strict=False, max_length=100, description="What shipping discounts took off"
    )
    discounted_price: Money | None = Field(
        default=None,
        description="price - Σ discount_allocations.amount: what the customer pays for this "
        "shipping (tax included when the order's `taxes_included`)",
    )
    tax_lines: tuple[TaxLine, ...] = Field(
        default=(), strict=False, max_length=50, description="Taxes on the shipping"
    )


class ChargeKind(StrEnum):
    """A charge that is neither goods nor shipping: `tip`, `duty` (import duties collected
    at checkout), `fee` (any other fee)."""

    TIP = "tip"
    DUTY = "duty"
    FEE = "fee"


class Charge(ContractModel):
    """Money the customer paid that is neither goods nor shipping."""

    kind: ChargeKind = Field(strict=False)
    title: Title = Field(examples=["Tip", "Import duties"])
    amount: Money = Field(description="The charge (tax included when the order's taxes_included)")
    tax_lines: tuple[TaxLine, ...] = Field(
        default=(), strict=False, max_length=50, description="Taxes on the charge"
    )


class PaymentTransaction(ContractModel):
    """One money movement the channel reports (an authorization, a capture, a sale...)."""

    transaction_id: Identifier = Field(description="The channel's or gateway's id")
    kind: Code = Field(
        description="authorization, capture, sale, void, refund (as the channel says)",
        examples=["authorization", "sale"],
    )
    status: Code = Field(
        description="success, pending, failure or error (as the channel says)",
        examples=["success"],
    )
    amount: Money
    gateway: GatewayName
    authorization: Title | None = Field(
        default=None, description="The gateway's authorization reference, when it gave one"
    )
    processed_at: UtcDatetime | None = Field(default=None, strict=False)


class PaymentTerms(ContractModel):
    """Net terms of a business customer who pays on invoice."""

    name: Title = Field(description="The terms as named", examples=["Net 30"])
    due_in_days: int | None = Field(default=None, ge=0, le=3650, examples=[30])
    due_at: UtcDatetime | None = Field(
        default=None, strict=False, description="When payment is due"
    )


class ChannelPayment(ContractModel):
    """How the order was paid in the channel, as far as the channel says. Orders taken
    over HTTP without it are paid through this system (see the payment service)."""

    financial_status: Code = Field(
        description="The channel's payment status: pending, authorized, partially_paid, "
        "paid, partially_refunded, refunded, voided, or another the channel uses",
        examples=["paid", "authorized"],
    )
    gateways: tuple[GatewayName, ...] = Field(
        default=(), strict=False, max_length=20, description="Gateways the customer paid through"
    )
    transactions: tuple[PaymentTransaction, ...] = Field(
        default=(),
        strict=False,
        max_length=100,
        description="The channel's transactions, when it sends them",
    )
    outstanding: Money | None = Field(
        default=None, description="What the customer still owes, when the channel says"
    )
    terms: PaymentTerms | None = Field(
        default=None, description="Net terms, for an order paid on invoice"
    )
