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


def _known_country(code: str) -> str:
    if pycountry.countries.get(alpha_2=code) is None:
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
    city: Name = Field(description="City or town", examples=["Paris"])
    postal_code: str = Field(
        min_length=1, max_length=16, description="Postal code", examples=["75002"]
    )
    region: Name | None = Field(
        default=None, description="State, province or county where one is used", examples=["QC"]
    )
    country: CountryCode
    phone: Phone | None = None


class Customer(ContractModel):
    """The person who placed the order, as the channel knows them."""

    customer_id: Identifier = Field(description="Customer id", examples=["cus_8812"])
    email: Email
    name: Name = Field(description="Customer name", examples=["Ada Lovelace"])
    locale: Locale


class OrderLine(ContractModel):
    """One line of an order: so many of one SKU at one unit price."""

    line_id: Identifier = Field(description="Line id, unique within the order", examples=["1"])
    sku: Sku
    quantity: Quantity
    unit_price: Money = Field(description="Price of one unit")
    line_total: Money = Field(
        description="unit_price times quantity; a line discount is folded into unit_price"
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
