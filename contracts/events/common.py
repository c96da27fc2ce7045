"""Value models and field types that several events share.

Everything here is frozen and strict like the events themselves (it all derives from
`ContractModel`), so a nested value can never be changed or coerced after parsing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pycountry
from pydantic import AfterValidator, Field

from contracts.base import ContractModel, Identifier, Money, Quantity, Sku
from contracts.events.pricing import (
    ChannelPayment,
    Charge,
    Discount,
    DiscountAllocation,
    ShippingLine,
    TaxLine,
    Title,
)

USER_ASSIGNED_COUNTRIES = frozenset({"XK"})
"""Codes outside ISO 3166-1 that carriers and shops use all the same: XK, Kosovo."""
COUNTRY_CODES = (
    frozenset(country.alpha_2 for country in pycountry.countries) | USER_ASSIGNED_COUNTRIES
)
"""Read once: pycountry's own lookup costs ~50 µs, and every address is checked."""


def _known_country(code: str) -> str:
    if code not in COUNTRY_CODES:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


CountryCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country code",
        examples=["FR"],
    ),
    AfterValidator(_known_country),
]
Email = Annotated[
    str,
    Field(
        max_length=254,
        # Shape only (something@domain.tld): deliverability is the mail server's business.
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="E-mail address",
        examples=["ada@example.com"],
    ),
]
Locale = Annotated[
    str,
    Field(
        pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$",
        description="Language, optionally with region (BCP 47 subset): picks message templates",
        examples=["en", "fr", "fr-CA"],
    ),
]
Phone = Annotated[
    str,
    Field(
        pattern=r"^\+?\(?[0-9][0-9 ()./-]{3,31}$",
        description="Phone number for the carrier, preferably E.164",
        examples=["+33 1 23 45 67 89"],
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
AddressLine = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(min_length=1, max_length=2000)]
Actor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
        description="Who did it: `customer`, `system`, or `<role>:<user id>` for staff",
        examples=["customer", "agent:jdoe"],
    ),
]
WarehouseId = Annotated[
    Identifier, Field(description="Warehouse the stock is in", examples=["wh-paris-1"])
]
ReservationId = Annotated[
    Identifier, Field(description="Stock reservation for the order", examples=["res_01HZX4"])
]
ShipmentId = Annotated[Identifier, Field(description="Shipment id", examples=["shp_01HZX5"])]
ReturnId = Annotated[Identifier, Field(description="Return (RMA) id", examples=["rma_01HZX6"])]
Channel = Annotated[
    str,
    Field(
        # No colon: the inbound key is `channel:external_order_id`, split at the first colon.
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="Sales channel that took the order",
        examples=["webshop", "marketplace", "b2b"],
    ),
]
ExternalOrderId = Annotated[
    Identifier,
    Field(
        description="The order's id in the sales channel; unique per channel (idempotency key)",
        examples=["WS-100234"],
    ),
]


class ShippingSpeed(StrEnum):
    """How fast the customer asked (and paid) for delivery."""

    STANDARD = "standard"
    EXPRESS = "express"
    NEXT_DAY = "next_day"


class Address(ContractModel):
    """A postal address to deliver to."""

    name: Name = Field(description="Recipient name", examples=["Ada Lovelace"])
    line1: AddressLine = Field(description="Street and number", examples=["12 rue de la Paix"])
    line2: AddressLine | None = Field(
        default=None, description="Building, floor, apartment", examples=["Bâtiment B"]
    )
    city: Name | None = Field(
        default=None,
        description="City or town; absent only where the country's addresses have none "
        "(Singapore, say)",
        examples=["Paris"],
    )
    postal_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Postal code; absent only where the country uses none (Hong Kong, say). "
        "The order service checks per country that it is there when required and has the "
        "country's format",
        examples=["75002"],
    )
    region: Name | None = Field(
        default=None, description="State, province or county where one is used", examples=["QC"]
    )
    country: CountryCode
    phone: Phone | None = None


class Customer(ContractModel):
    """The person who placed the order, as the channel knows them. A point-of-sale or
    draft order may come without a known customer: then only the locale is certain."""

    customer_id: Identifier | None = Field(
        default=None,
        description="The customer's id in the channel; absent for a guest the channel does "
        "not know",
        examples=["cus_8812"],
    )
    email: Email | None = Field(
        default=None,
        description="Where order e-mails go; absent when the channel has none (a point-of-sale "
        "or draft order, say): no e-mail is sent then",
    )
    name: Name | None = Field(default=None, description="Customer name", examples=["Ada Lovelace"])
    locale: Locale


class OrderLine(ContractModel):
    """One line of an order: so many of one SKU at one unit price, less its discounts,
    with its taxes."""

    line_id: Identifier = Field(description="Line id, unique within the order", examples=["1"])
    sku: Sku
    title: Title | None = Field(
        default=None, description="The product as the channel names it", examples=["Oak chair"]
    )
    quantity: Quantity
    unit_price: Money = Field(
        description="Price of one unit before discounts (tax included when the order's "
        "taxes_included)"
    )
    line_total: Money = Field(
        description="unit_price * quantity: the line before discounts. (A channel may also "
        "fold a discount into unit_price and send no allocation.)"
    )
    discount_allocations: tuple[DiscountAllocation, ...] = Field(
        default=(),
        strict=False,
        max_length=100,
        description="What each discount took off this line, order-level discounts' shares included",
    )
    discounted_total: Money | None = Field(
        default=None,
        description="line_total - Σ discount_allocations.amount: the line's amount after "
        "discounts (tax included when the order's taxes_included). Absent means line_total",
    )
    tax_lines: tuple[TaxLine, ...] = Field(
        default=(),
        strict=False,
        max_length=50,
        description="Taxes on this line, after its discounts",
    )


class SkuQuantity(ContractModel):
    """So many units of one SKU."""

    sku: Sku
    quantity: Quantity


class Allocation(ContractModel):
    """Units of one SKU held for the order in one warehouse."""

    warehouse_id: WarehouseId
    sku: Sku
    quantity: Quantity
    warehouse_country: CountryCode | None = Field(
        default=None, description="Country of the warehouse (from the inventory's records)"
    )


class Reason(ContractModel):
    """Why something was refused, in words a machine and a person can both act on.

    Events that refuse things narrow `code` to their own documented enum.
    """

    code: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="Machine-readable reason code"
    )
    field: str | None = Field(
        default=None,
        max_length=256,
        description="Dotted path of the offending field, when one field is to blame",
        examples=["lines.0.quantity"],
    )
    message: Note = Field(description="Human-readable explanation")


class OrderPricing(ContractModel):
    """The money of an order beyond its lines and v1's subtotal, shipping_charge and
    total: what `OrderSubmitted` and `OrderPlaced` share. All optional, so an order of
    the first contract version (no discounts, no tax) still reads the same."""

    discounts: tuple[Discount, ...] = Field(
        default=(), strict=False, max_length=100, description="Every discount applied to the order"
    )
    shipping_lines: tuple[ShippingLine, ...] = Field(
        default=(),
        strict=False,
        max_length=20,
        description="Shipping methods paid for; when present, shipping_charge = Σ price",
    )
    charges: tuple[Charge, ...] = Field(
        default=(),
        strict=False,
        max_length=20,
        description="Tips, duties and other fees the customer paid",
    )
    taxes_included: bool = Field(
        default=False,
        description="True when every price and amount includes its tax (tax is then part "
        "of the total, not added to it)",
    )
    total_discounts: Money | None = Field(
        default=None,
        description="Σ every discount allocation, of lines and of shipping lines. Absent "
        "means zero",
    )
    total_tax: Money | None = Field(
        default=None,
        description="Σ every tax line, of lines, shipping lines and charges. Absent means zero",
    )
    billing_address: Address | None = Field(
        default=None, description="Where the customer's payment method is registered"
    )
    payment: ChannelPayment | None = Field(
        default=None, description="How the order was paid in the channel, when it says"
    )
