"""Shopify's `orders/create` webhook payload → `OrderSubmitted`. Pure: no I/O.

Field by field (Shopify's REST order resource, as the webhook sends it):

- external_order_id: `id` (numeric, stable across retries; `name` is the "#1001" label)
- customer.customer_id: `customer.id`
- customer.email: `email`, else `contact_email`, else `customer.email`
- customer.name: `customer.first_name` + `last_name`, else the shipping address's name
- customer.locale: `customer_locale` ("en", "fr-CA"); "en" when absent or unreadable
- currency: `currency` (the shop currency, which every amount below is in)
- lines[i]: `line_items[i]`: `id` as line_id, `sku`, `quantity`, `price` as unit_price,
  and `price` x `quantity` minus `total_discount` as line_total
- subtotal: `subtotal_price`; total: `total_price`
- shipping_charge: `total_shipping_price_set.shop_money.amount`, else the sum of
  `shipping_lines[].price`
- shipping_address: `shipping_address`: `name` (or first_name + last_name), `address1`,
  `address2`, `city`, `zip`, `province_code` (or `province`), `country_code`, `phone`
- shipping_speed: the first shipping line's code or title: "next day" or "overnight" is
  next_day, "express" or "priority" is express, anything else standard
- submitted_at: `created_at`; notes: `note`

Amounts are Shopify's decimal strings, turned into minor units exactly. Shopify's own
amounts are passed on as they are, never recomputed: whether they add up (taxes added on
top of prices, order-level discounts) is the order service's rule to judge, and it
answers an order that breaks it with OrderRejected and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.money import NotAnAmount, currency_exponent, to_minor_units
from adapters.publisher import FieldProblem, validate_order
from contracts.events.channel import OrderSubmitted

DEFAULT_LOCALE = "en"
_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}))?$")


class UnmappablePayload(ValueError):
    """The payload lacks what an order needs, or carries it in a shape we cannot read.
    `problems` names each Shopify field (dotted path) and what is wrong with it."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


def map_order(payload: Any, *, channel: str) -> OrderSubmitted:
    """The OrderSubmitted for a Shopify order.

    Raises `UnmappablePayload` (Shopify field paths) when fields are missing or unreadable,
    and `adapters.publisher.InvalidOrder` (contract field paths) when the mapped order
    breaks the contract (an e-mail address or country code that is not one, say)."""
    return validate_order(map_to_contract_fields(payload, channel=channel))


def map_to_contract_fields(payload: Any, *, channel: str) -> dict[str, Any]:
    """The mapped order as the contract's JSON fields, before contract validation."""
    if not isinstance(payload, Mapping):
        raise UnmappablePayload([FieldProblem("payload", "expected a JSON object (an order)")])
    read = _Reader()
    currency = _currency(read, payload)
    customer = read.mapping(payload, "customer")
    address = read.mapping(payload, "shipping_address")
    mapped: dict[str, Any] = {
        "channel": channel,
        "external_order_id": read.identifier(payload, "id"),
        "customer": {
            "customer_id": read.identifier(customer, "customer.id") if customer else None,
            "email": _email(read, payload, customer),
            "name": _customer_name(read, customer, address),
            "locale": _locale(payload.get("customer_locale")),
        },
        "lines": _lines(read, payload, currency),
        "currency": currency,
        "subtotal": read.money(payload, "subtotal_price", currency),
        "shipping_charge": _shipping_charge(read, payload, currency),
        "total": read.money(payload, "total_price", currency),
        "shipping_address": _address(read, address) if address else None,
        "shipping_speed": _shipping_speed(payload.get("shipping_lines")),
        "submitted_at": _created_at(read, payload),
    }
    note = payload.get("note")
    if isinstance(note, str) and note.strip():
        mapped["notes"] = note.strip()
    if read.problems:
        raise UnmappablePayload(read.problems)
    return mapped


class _Reader:
    """Reads fields by dotted Shopify path, collecting every problem instead of stopping
    at the first, so one answer lists all that is wrong."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(FieldProblem(path, message))

    def value(self, source: Mapping[str, Any], path: str) -> Any:
        value = source.get(path.rsplit(".", 1)[-1])
        if value is None or (isinstance(value, str) and not value.strip()):
            self.problem(path, "missing")
            return None
        return value

    def mapping(self, source: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
        value = self.value(source, path)
        if value is not None and not isinstance(value, Mapping):
            self.problem(path, "expected a JSON object")
            return None
        return value

    def text(self, source: Mapping[str, Any], path: str) -> str | None:
        value = self.value(source, path)
        if value is not None and not isinstance(value, str):
            self.problem(path, f"expected a string, got {_json_type(value)}")
            return None
        return value.strip() if value is not None else None

    def identifier(self, source: Mapping[str, Any], path: str) -> str | None:
        """Shopify ids are JSON integers; the contract's ids are strings."""
        value = self.value(source, path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problem(path, f"expected an integer id, got {_json_type(value)}")
            return None
        return str(value)

    def money(
        self, source: Mapping[str, Any], path: str, currency: str | None
    ) -> dict[str, Any] | None:
        value = self.value(source, path)
        if value is None or currency is None:
            return None
        try:
            return {"amount_minor": to_minor_units(value, currency), "currency": currency}
        except NotAnAmount as error:
            self.problem(path, str(error))
            return None


def _currency(read: _Reader, payload: Mapping[str, Any]) -> str | None:
    code = read.text(payload, "currency")
    if code is None:
        return None
    try:
        currency_exponent(code)
    except NotAnAmount as error:
        read.problem("currency", str(error))
        return None
    return code


def _email(
    read: _Reader, payload: Mapping[str, Any], customer: Mapping[str, Any] | None
) -> str | None:
    for candidate in (
        payload.get("email"),
        payload.get("contact_email"),
        customer.get("email") if customer else None,
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    read.problem("email", "missing (nor contact_email, nor customer.email)")
    return None


def _full_name(source: Mapping[str, Any] | None) -> str | None:
    if not source:
        return None
    parts = [source.get("first_name"), source.get("last_name")]
    name = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return name or None


def _customer_name(
    read: _Reader, customer: Mapping[str, Any] | None, address: Mapping[str, Any] | None
) -> str | None:
    name = _full_name(customer) or _address_name(address)
    if name is None and customer is not None:
        read.problem("customer.first_name", "missing (nor last_name, nor a shipping name)")
    return name


def _address_name(address: Mapping[str, Any] | None) -> str | None:
    if not address:
        return None
    name = address.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return _full_name(address)


def _locale(value: Any) -> str:
    """Shopify's `customer_locale` in the contract's form ("fr-ca" → "fr-CA"); a script
    subtag or anything unreadable falls back to the language, then to English."""
    if not isinstance(value, str):
        return DEFAULT_LOCALE
    match = _LOCALE.match(value.strip())
    if match is None:
        language = value.strip().split("-", 1)[0].split("_", 1)[0]
        return language.lower() if re.fullmatch(r"[A-Za-z]{2,3}", language) else DEFAULT_LOCALE
    language, region = match.groups()
    return f"{language.lower()}-{region.upper()}" if region else language.lower()


def _lines(
    read: _Reader, payload: Mapping[str, Any], currency: str | None
) -> list[dict[str, Any]] | None:
    items = read.value(payload, "line_items")
    if items is None:
        return None
    if not isinstance(items, list):
        read.problem("line_items", "expected a list")
        return None
    if not items:
        read.problem("line_items", "empty: an order needs at least one line item")
        return None
    lines = []
    for index, item in enumerate(items):
        path = f"line_items.{index}"
        if not isinstance(item, Mapping):
            read.problem(path, "expected a JSON object")
            continue
        lines.append(_line(read, item, path, currency))
    return lines


def _line(
    read: _Reader, item: Mapping[str, Any], path: str, currency: str | None
) -> dict[str, Any]:
    quantity = read.value(item, f"{path}.quantity")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        read.problem(f"{path}.quantity", f"expected an integer, got {_json_type(quantity)}")
        quantity = None
    unit_price = read.money(item, f"{path}.price", currency)
    discount = item.get("total_discount")
    discount_minor = 0
    if discount is not None and currency is not None:
        try:
            discount_minor = to_minor_units(discount, currency)
        except NotAnAmount as error:
            read.problem(f"{path}.total_discount", str(error))
    line_total = None
    if unit_price is not None and isinstance(quantity, int):
        amount = unit_price["amount_minor"] * quantity - discount_minor
        if amount < 0:
            read.problem(f"{path}.total_discount", "larger than price x quantity")
        line_total = {"amount_minor": amount, "currency": currency}
    return {
        "line_id": read.identifier(item, f"{path}.id"),
        "sku": read.text(item, f"{path}.sku"),
        "quantity": quantity,
        "unit_price": unit_price,
        "line_total": line_total,
    }


def _shipping_charge(
    read: _Reader, payload: Mapping[str, Any], currency: str | None
) -> dict[str, Any] | None:
    price_set = payload.get("total_shipping_price_set")
    if isinstance(price_set, Mapping) and isinstance(price_set.get("shop_money"), Mapping):
        return read.money(
            price_set["shop_money"], "total_shipping_price_set.shop_money.amount", currency
        )
    shipping_lines = payload.get("shipping_lines")
    if not isinstance(shipping_lines, list):
        read.problem("total_shipping_price_set", "missing (nor shipping_lines)")
        return None
    total = 0
    for index, shipping_line in enumerate(shipping_lines):
        path = f"shipping_lines.{index}"
        if not isinstance(shipping_line, Mapping):
            read.problem(path, "expected a JSON object")
            continue
        amount = read.money(shipping_line, f"{path}.price", currency)
        total += amount["amount_minor"] if amount else 0
    return {"amount_minor": total, "currency": currency} if currency else None


def _shipping_speed(shipping_lines: Any) -> str:
    if not isinstance(shipping_lines, list) or not shipping_lines:
        return "standard"
    first = shipping_lines[0]
    if not isinstance(first, Mapping):
        return "standard"
    words = (
        " ".join(str(first.get(key) or "") for key in ("code", "title"))
        .lower()
        .replace("-", " ")
        .replace("_", " ")
    )
    if "next day" in words or "overnight" in words:
        return "next_day"
    if "express" in words or "priority" in words:
        return "express"
    return "standard"


def _address(read: _Reader, address: Mapping[str, Any]) -> dict[str, Any]:
    name = _address_name(address)
    if name is None:
        read.problem("shipping_address.first_name", "missing (nor last_name, nor name)")
    region = address.get("province_code") or address.get("province")
    line2 = address.get("address2")
    phone = address.get("phone")
    mapped: dict[str, Any] = {
        "name": name,
        "line1": read.text(address, "shipping_address.address1"),
        "city": read.text(address, "shipping_address.city"),
        "postal_code": read.text(address, "shipping_address.zip"),
        "country": read.text(address, "shipping_address.country_code"),
    }
    # Optional fields: Shopify sends null or "" when they are not filled in.
    for key, value in (("line2", line2), ("region", region), ("phone", phone)):
        if isinstance(value, str) and value.strip():
            mapped[key] = value.strip()
    return mapped


def _created_at(read: _Reader, payload: Mapping[str, Any]) -> str | None:
    value = read.text(payload, "created_at")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        read.problem("created_at", "not an ISO 8601 date and time")
        return None
    if moment.tzinfo is None:
        read.problem("created_at", "has no UTC offset")
        return None
    return moment.isoformat()


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
