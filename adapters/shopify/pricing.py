"""The money of a Shopify order in the contract's terms: lines, discounts and their
allocations, tax lines, shipping lines and charges (tips, duties, fees). Pure: no I/O.

Every price, allocation, tax line and total is Shopify's own, read as it is (never
recomputed from rates or percentages, never rounded), so the mapped order adds up
exactly when Shopify's does. The rules, and why:

- a line's discounts are its `discount_allocations` (order-level discounts' shares
  included), joined by `discount_application_index` to `discount_applications`. The
  legacy `total_discount` is never added to them (Shopify fills it on some orders and
  not on others); only a line without allocations takes a positive `total_discount` as
  its one discount (API versions before allocations);
- a shipping line's discounts are its allocations too. Whether `discounted_price` is net
  of order-level shipping discounts changed across API versions, so it is used only when
  a shipping line has no allocations: a price it is lower than is a discount then;
- tip line items (`tip_payment_gateway`/`tip_payment_method`) are not goods: they are a
  tip charge, as are duties and additional fees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from adapters.money import NotAnAmount, to_minor_units
from adapters.shopify.reader import Reader, clip
from adapters.shopify.sku import SkuFallback

TITLE_LENGTH = 255  # the contract's Title
PERCENTAGE_PLACES = 6  # the contract's Percentage
RATE_PLACES = 12  # the contract's TaxRate

_KINDS = {
    "discount_code": "code",
    "automatic": "automatic",
    "script": "automatic",  # Shopify Scripts: rules of the shop that apply by themselves
    "manual": "manual",
}
LEGACY_LINE_DISCOUNT = "Line discount"
SHIPPING_DISCOUNT = "Shipping discount"
NEUTRAL_DISCOUNT = "Discount"


@dataclass
class Pricing:
    """The contract's fields for the order's money, as JSON values."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    discounts: list[dict[str, Any]] = field(default_factory=list)
    shipping_lines: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    subtotal: int = 0
    shipping_charge: int = 0
    total_discounts: int = 0
    total_tax: int = 0


@dataclass
class _Discount:
    """One of `discount_applications`, and what its allocations took off in all."""

    fields: dict[str, Any]
    fixed_value: Any
    allocated: int = 0

    @property
    def reference(self) -> dict[str, Any]:
        """What an allocation repeats of its discount."""
        return {key: self.fields[key] for key in ("discount_id", "kind", "title")}


def map_pricing(read: Reader, payload: Mapping[str, Any], sku_fallback: SkuFallback) -> Pricing:
    pricing = Pricing()
    discounts = _discounts(read, payload)
    line_items = _line_items(read, payload)
    tips = []
    for path, item in line_items:
        if _is_tip(item):
            tips.append(_tip(read, item, path, discounts))
        else:
            pricing.lines.append(_line(read, item, path, discounts, sku_fallback))
    if line_items and not pricing.lines:
        read.problem("line_items", "only tips: an order needs at least one item")
    shipping_discounts = [
        discount for discount in discounts if discount and discount.fields["target"] == "shipping"
    ]
    for path, item in read.items(payload, "shipping_lines"):
        pricing.shipping_lines.append(
            _shipping_line(read, item, path, discounts, shipping_discounts)
        )
    pricing.charges = [*tips, *_order_charges(read, payload, tipped=bool(tips))]
    pricing.discounts = [_discount_fields(read, discount) for discount in discounts if discount]

    pricing.subtotal = sum(_minor(line["line_total"]) for line in pricing.lines)
    if pricing.shipping_lines:
        pricing.shipping_charge = sum(_minor(line["price"]) for line in pricing.shipping_lines)
    else:
        pricing.shipping_charge = read.amount(payload, "total_shipping_price", required=False) or 0
    pricing.total_discounts = sum(
        _minor(allocation["amount"])
        for part in (*pricing.lines, *pricing.shipping_lines)
        for allocation in part["discount_allocations"]
    )
    pricing.total_tax = sum(
        _minor(tax["amount"])
        for part in (*pricing.lines, *pricing.shipping_lines, *pricing.charges)
        for tax in part["tax_lines"]
    )
    return pricing


def _minor(money: dict[str, Any] | None) -> int:
    # An amount that could not be read is reported already; the order is not mapped.
    return money["amount_minor"] if money else 0


# -- discounts ----------------------------------------------------------------------------


def _discounts(read: Reader, payload: Mapping[str, Any]) -> list[_Discount | None]:
    """`discount_applications` by position (allocations name them by index); None where
    an entry is not an object (reported)."""
    applications = payload.get("discount_applications")
    if applications is None:
        return []
    if not isinstance(applications, list):
        read.problem("discount_applications", "expected a list")
        return []
    by_position: list[_Discount | None] = []
    for index, application in enumerate(applications):
        path = f"discount_applications.{index}"
        if isinstance(application, Mapping):
            by_position.append(_discount(read, application, path, index))
        else:
            read.problem(path, "expected a JSON object")
            by_position.append(None)
    return by_position


def _discount(read: Reader, application: Mapping[str, Any], path: str, index: int) -> _Discount:
    code = clip(application.get("code"), TITLE_LENGTH)
    kind = _KINDS.get(str(application.get("type")))
    if kind is None:  # a type newer than this mapping: a code when it has one
        kind = "code" if code else "automatic"
    title = (
        (code if kind == "code" else None)
        or clip(application.get("title"), TITLE_LENGTH)
        or clip(application.get("description"), TITLE_LENGTH)
        or code
        or NEUTRAL_DISCOUNT
    )
    percentage = application.get("value_type") == "percentage"
    fields: dict[str, Any] = {
        "discount_id": str(index),
        "kind": kind,
        "title": title,
        "value_type": "percentage" if percentage else "fixed_amount",
        "target": _target(application),
    }
    if code and kind == "code":
        fields["code"] = code
    if percentage:
        value = read.decimal(application, f"{path}.value")
        fields["percentage"] = (
            _decimal_text(value, PERCENTAGE_PLACES) if value is not None else None
        )
    return _Discount(fields, fixed_value=None if percentage else application.get("value"))


def _target(application: Mapping[str, Any]) -> str:
    if application.get("target_type") == "shipping_line":
        return "shipping"
    if application.get("target_selection") == "all":
        return "order"
    return "line"


def _discount_fields(read: Reader, discount: _Discount) -> dict[str, Any]:
    fields = dict(discount.fields)
    if fields["value_type"] == "fixed_amount":
        fields["amount"] = read.money(_fixed_amount(read, discount))
    return fields


def _fixed_amount(read: Reader, discount: _Discount) -> int | None:
    """The amount off as the discount states it. Its `value` carries no currency, so it
    is taken only when the order has one currency; otherwise (and when it is absent) the
    discount is stated by what it took off in the leg's currency."""
    value = discount.fixed_value
    if not read.single_currency or value is None or read.currency is None:
        return discount.allocated
    path = f"discount_applications.{discount.fields['discount_id']}.value"
    try:
        return to_minor_units(value, read.currency)
    except NotAnAmount as error:
        read.problem(path, str(error))
        return None


def _allocations(
    read: Reader, owner: Mapping[str, Any], path: str, discounts: list[_Discount | None]
) -> list[dict[str, Any]]:
    allocations = []
    for allocation_path, allocation in read.items(owner, f"{path}.discount_allocations"):
        amount = read.amount(allocation, f"{allocation_path}.amount")
        index = allocation.get("discount_application_index")
        discount = (
            discounts[index]
            if isinstance(index, int)
            and not isinstance(index, bool)
            and 0 <= index < len(discounts)
            else None
        )
        if discount is None:
            read.problem(
                f"{allocation_path}.discount_application_index",
                f"{index!r} names none of the {len(discounts)} discount_applications",
            )
            continue
        discount.allocated += amount or 0
        allocations.append(_allocation(read, amount, discount.reference))
    return allocations


def _allocation(read: Reader, amount: int | None, reference: dict[str, Any]) -> dict[str, Any]:
    return {"amount": read.money(amount), **reference}


# -- lines --------------------------------------------------------------------------------


def _line_items(read: Reader, payload: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    if read.value(payload, "line_items") is None:
        return []
    if isinstance(payload["line_items"], list) and not payload["line_items"]:
        read.problem("line_items", "empty: an order needs at least one line item")
    return read.items(payload, "line_items")


def _is_tip(item: Mapping[str, Any]) -> bool:
    return any(item.get(key) for key in ("tip_payment_gateway", "tip_payment_method"))


def _line(
    read: Reader,
    item: Mapping[str, Any],
    path: str,
    discounts: list[_Discount | None],
    sku_fallback: SkuFallback,
) -> dict[str, Any]:
    quantity = read.count(item, f"{path}.quantity")
    unit_price = read.amount(item, f"{path}.price")
    line_total = _times(unit_price, quantity)
    allocations = _allocations(read, item, path, discounts) or _legacy_discount(read, item, path)
    discounted_total = _after(read, line_total, allocations, f"{path}.discount_allocations")
    line: dict[str, Any] = {
        "line_id": read.identifier(item, f"{path}.id"),
        "sku": _sku(read, item, path, sku_fallback),
        "quantity": quantity,
        "unit_price": read.money(unit_price),
        "line_total": read.money(line_total),
        "discount_allocations": allocations,
        "discounted_total": read.money(discounted_total),
        "tax_lines": _tax_lines(read, item, path),
    }
    title = clip(item.get("name"), TITLE_LENGTH) or clip(item.get("title"), TITLE_LENGTH)
    if title:
        line["title"] = title
    return line


def _times(unit: int | None, quantity: int | None) -> int | None:
    return None if unit is None or quantity is None else unit * quantity


def _legacy_discount(read: Reader, item: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    """A line without allocations whose `total_discount` is positive (API versions before
    allocations): that is its one discount. (Those versions predate presentment amounts:
    in another currency it cannot be read, and is not.)"""
    if not read.in_leg(item, f"{path}.total_discount"):
        return []
    amount = read.amount(item, f"{path}.total_discount", required=False)
    if not amount:
        return []
    return [_allocation(read, amount, {"kind": "manual", "title": LEGACY_LINE_DISCOUNT})]


def _after(
    read: Reader, amount: int | None, allocations: list[dict[str, Any]], path: str
) -> int | None:
    """`amount` less its allocations."""
    if amount is None:
        return None
    taken = sum(_minor(allocation["amount"]) for allocation in allocations)
    if taken > amount:
        read.problem(path, f"take off {taken} in all, more than the {amount} they discount")
        return None
    return amount - taken


def _sku(read: Reader, item: Mapping[str, Any], path: str, sku_fallback: SkuFallback) -> str | None:
    sku = item.get("sku")
    if isinstance(sku, str) and sku.strip():
        return sku.strip()
    if sku is not None and not isinstance(sku, str):
        read.problem(f"{path}.sku", "expected a string")
        return None
    ids = {
        "variant_id": read.identifier(item, f"{path}.variant_id", required=False),
        "product_id": read.identifier(item, f"{path}.product_id", required=False),
        "line_item_id": read.identifier(item, f"{path}.id", required=False),
    }
    lacking = [name for name in sku_fallback.placeholders if not ids[name]]
    if lacking:
        read.problem(
            f"{path}.sku",
            f"missing, and the SKU fallback {sku_fallback.template!r} needs "
            f"{' and '.join(lacking)}, which this line has not (a custom item?)",
        )
        return None
    return sku_fallback.render({name: value for name, value in ids.items() if value})


def _tax_lines(read: Reader, owner: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    taxes = []
    for tax_path, tax in read.items(owner, f"{path}.tax_lines"):
        rate = read.decimal(tax, f"{tax_path}.rate")
        taxes.append(
            {
                "title": clip(tax.get("title"), TITLE_LENGTH) or "Tax",
                "rate": _decimal_text(rate, RATE_PLACES) if rate is not None else None,
                "amount": read.money(read.amount(tax, f"{tax_path}.price")),
            }
        )
    return taxes


def _decimal_text(value: Decimal, places: int) -> str:
    """The decimal as the contract writes it: "0.20" → "0.2", "15.0" → "15". Past the
    contract's places (which Shopify's rates and percentages never reach) it is rounded:
    it describes, the amounts are what add up."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return format(value.normalize(), "f")


# -- shipping -----------------------------------------------------------------------------


def _shipping_line(
    read: Reader,
    item: Mapping[str, Any],
    path: str,
    discounts: list[_Discount | None],
    shipping_discounts: list[_Discount],
) -> dict[str, Any]:
    price = read.amount(item, f"{path}.price")
    allocations = _allocations(read, item, path, discounts)
    if not allocations and price is not None:
        allocations = _discounted_price_difference(read, item, path, price, shipping_discounts)
    line: dict[str, Any] = {
        "title": clip(item.get("title"), TITLE_LENGTH)
        or clip(item.get("code"), TITLE_LENGTH)
        or "Shipping",
        "price": read.money(price),
        "discount_allocations": allocations,
        "discounted_price": read.money(
            _after(read, price, allocations, f"{path}.discount_allocations")
        ),
        "tax_lines": _tax_lines(read, item, path),
    }
    code = clip(item.get("code"), TITLE_LENGTH)
    if code:
        line["code"] = code
    return line


def _discounted_price_difference(
    read: Reader,
    item: Mapping[str, Any],
    path: str,
    price: int,
    shipping_discounts: list[_Discount],
) -> list[dict[str, Any]]:
    """A shipping line without allocations but a `discounted_price` below its price
    (API versions that state shipping discounts only so): the difference is a discount,
    the order's shipping discount when it has exactly one."""
    if not read.in_leg(item, f"{path}.discounted_price"):
        return []
    discounted = read.amount(item, f"{path}.discounted_price", required=False)
    if discounted is None or discounted >= price:
        return []
    if len(shipping_discounts) == 1:
        [discount] = shipping_discounts
        discount.allocated += price - discounted
        return [_allocation(read, price - discounted, discount.reference)]
    return [_allocation(read, price - discounted, {"kind": "manual", "title": SHIPPING_DISCOUNT})]


# -- charges ------------------------------------------------------------------------------


def _tip(
    read: Reader, item: Mapping[str, Any], path: str, discounts: list[_Discount | None]
) -> dict[str, Any]:
    """A tip line item as a charge: its amount after any allocation (a charge has none)."""
    quantity = read.count(item, f"{path}.quantity")
    price = read.amount(item, f"{path}.price")
    gross = _times(price, quantity)
    allocations = _allocations(read, item, path, discounts)
    return {
        "kind": "tip",
        "title": clip(item.get("title"), TITLE_LENGTH)
        or clip(item.get("name"), TITLE_LENGTH)
        or "Tip",
        "amount": read.money(_after(read, gross, allocations, f"{path}.discount_allocations")),
        "tax_lines": _tax_lines(read, item, path),
    }


def _order_charges(
    read: Reader, payload: Mapping[str, Any], *, tipped: bool
) -> list[dict[str, Any]]:
    """The tip when no tip line states it, duties collected at checkout (not when the
    prices include them), and additional fees."""
    charges: list[dict[str, Any]] = []
    tip = None if tipped else read.amount(payload, "total_tip_received", required=False)
    if tip:
        charges.append({"kind": "tip", "title": "Tip", "amount": read.money(tip), "tax_lines": []})
    duties = (
        None
        if payload.get("duties_included") is True
        else read.amount(payload, "original_total_duties", required=False)
    )
    if duties:
        charges.append(
            {"kind": "duty", "title": "Duties", "amount": read.money(duties), "tax_lines": []}
        )
    fees = read.amount(payload, "original_total_additional_fees", required=False)
    if fees:
        charges.append(
            {"kind": "fee", "title": "Additional fees", "amount": read.money(fees), "tax_lines": []}
        )
    return charges
