"""Shopify's `orders/create` webhook payload → `OrderSubmitted`. Pure: no I/O.

Money leg. Shopify states most amounts in two currencies: the shop's (`currency`; the
plain strings such as `price`, and `*_set.shop_money`) and the buyer's
(`presentment_currency`; `*_set.presentment_money`). One leg is read throughout,
`OMS_SHOPIFY_MONEY`: `shop` (the default) or `presentment`. Shop is the default because
the ERP posts in the shop currency and Shopify's top-level fields are in it; presentment
suits a business that invoices what the buyer paid. Each leg is rounded by Shopify on its
own, so each adds up on its own; they are never mixed nor converted.

Field by field (Shopify's REST order resource, as the webhook sends it; "amount" means
`<field>_set.<leg>_money.amount`, else the plain `<field>` string when the leg's currency
is the shop currency; null, "" and missing are all absent):

- external_order_id: `id` (64-bit integer, kept exact; `name` is the "#1001" label)
- currency: `currency` (shop leg) or `presentment_currency` (presentment leg)
- customer.customer_id: `customer.id` (absent without a customer)
- customer.email: `email`, else `contact_email`, else `customer.email`, else absent
- customer.name: `customer.first_name` + `last_name`, else the shipping, then the billing
  address's `name` (or first + last name), else absent
- customer.locale: `customer_locale` ("en", "fr-CA"); "en" when absent or unreadable
- lines[i]: the goods among `line_items[i]`: `id` as line_id; `sku`, or when it is blank
  the fallback template `OMS_SHOPIFY_SKU_FALLBACK` (`shopify-variant:{variant_id}` by
  default; `{product_id}` and `{line_item_id}` also); `name` (else `title`) as title;
  `quantity`; amount of `price` as unit_price; line_total = unit_price * quantity;
  discount_allocations from `discount_allocations[]` (amount of `amount`, and the
  discount of `discount_application_index`: its id, kind and title), or for a line with
  none a positive amount of `total_discount` as one (manual, "Line discount");
  discounted_total = line_total - Σ allocations; tax_lines from `tax_lines[]` (`title`,
  `rate` as exact decimal text, amount of `price`)
- charges: a line item with `tip_payment_gateway` or `tip_payment_method` is a `tip` (its
  price * quantity, its tax lines); without one, a positive amount of
  `total_tip_received` is; a positive `original_total_duties_set` is a `duty` (unless
  `duties_included` is true); a positive `original_total_additional_fees_set` a `fee`
- discounts[i]: `discount_applications[i]`: discount_id = i; kind from `type`
  (discount_code → code, automatic and script → automatic, manual → manual); title = the
  `code` for a code, else `title`, else `description`, else "Discount"; code; value_type
  and `percentage` (from `value`) or `amount` (`value` when the order has one currency,
  else what its allocations took off); target from `target_type` shipping_line →
  shipping, `target_selection` all → order, else line
- shipping_lines[i]: `shipping_lines[i]`: `title` (else `code`), `code`, amount of
  `price`, discount_allocations as for lines (or, when there are none and the amount of
  `discounted_price` is lower than the price, the difference: from the order's one
  shipping discount, else manual "Shipping discount"); discounted_price = price -
  Σ allocations; tax_lines as for lines
- subtotal: Σ lines.line_total; total_discounts: Σ every allocation; total_tax: Σ every
  tax line (lines, shipping lines, charges); taxes_included: `taxes_included`
- shipping_charge: Σ shipping_lines.price; without shipping lines the amount of
  `total_shipping_price_set`, else zero
- total: amount of `total_price`, Shopify's own total, never recomputed: when its parts
  do not add up to it, the order service rejects the order naming both numbers
- shipping_address / billing_address: `shipping_address` / `billing_address`: `name` (or
  first + last name, or company, or the customer's name), `address1` (else `address2`)
  as line1, `address2`, `city`, `zip` as postal_code, `province_code` (else `province`)
  as region, `country_code`, `phone` (dropped when it is not a phone number). An address
  without a street is absent: no shipping address means an order collected in store (the
  billing address is never used for delivery); an incomplete billing address is left out
- shipping_speed: the first shipping line's code or title: "next day" or "overnight" is
  next_day, "express" or "priority" is express, anything else standard
- submitted_at: `created_at`, else `processed_at`; notes: `note`
- payment: `financial_status`; gateways `payment_gateway_names`; transactions from
  `transactions[]` when the payload has them (`id`, `kind`, `status`, amount of `amount`,
  `gateway`, `authorization`, `processed_at`); outstanding: amount of
  `total_outstanding`, when it is in the leg's currency; terms from `payment_terms`
  (`payment_terms_name`, `due_in_days`, the first `payment_schedules[].due_at`)

Other fields, and fields newer than this mapping, are ignored. Amounts are Shopify's
decimal strings (or JSON numbers) turned into minor units exactly, with the currency's
exponent (JPY 0, KWD 3). Long free text is cut to the contract's lengths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adapters.publisher import FieldProblem, validate_order
from adapters.shopify.pricing import map_pricing
from adapters.shopify.reader import MoneyLeg, Reader, clip, stripped
from adapters.shopify.sku import DEFAULT_SKU_FALLBACK, SkuFallback
from contracts.events.channel import OrderSubmitted
from contracts.events.common import Phone

DEFAULT_LOCALE = "en"
_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}))?$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # the contract's pricing.Code
_PHONE = TypeAdapter(Phone)
NAME_LENGTH = 200  # the contract's Name and AddressLine
TITLE_LENGTH = 255
GATEWAY_LENGTH = 128
NOTE_LENGTH = 2000
MAX_GATEWAYS = 20


class UnmappablePayload(ValueError):
    """The payload lacks what an order needs, or carries it in a shape we cannot read.
    `problems` names each Shopify field (dotted path) and what is wrong with it."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


def map_order(
    payload: Any,
    *,
    channel: str,
    money: MoneyLeg = MoneyLeg.SHOP,
    sku_fallback: SkuFallback = DEFAULT_SKU_FALLBACK,
) -> OrderSubmitted:
    """The OrderSubmitted for a Shopify order, its amounts from the `money` leg.

    Raises `UnmappablePayload` (Shopify field paths) when fields are missing or unreadable,
    and `adapters.publisher.InvalidOrder` (contract field paths) when the mapped order
    breaks the contract (an e-mail address or country code that is not one, say)."""
    return validate_order(
        map_to_contract_fields(payload, channel=channel, money=money, sku_fallback=sku_fallback)
    )


def map_to_contract_fields(
    payload: Any,
    *,
    channel: str,
    money: MoneyLeg = MoneyLeg.SHOP,
    sku_fallback: SkuFallback = DEFAULT_SKU_FALLBACK,
) -> dict[str, Any]:
    """The mapped order as the contract's JSON fields, before contract validation."""
    if not isinstance(payload, Mapping):
        raise UnmappablePayload([FieldProblem("payload", "expected a JSON object (an order)")])
    read = Reader(money)
    read.read_currencies(payload)
    customer = read.mapping(payload, "customer")
    shipping = read.mapping(payload, "shipping_address")
    billing = read.mapping(payload, "billing_address")
    customer_name = _full_name(customer)
    pricing = map_pricing(read, payload, sku_fallback)
    mapped: dict[str, Any] = {
        "channel": channel,
        "external_order_id": read.identifier(payload, "id"),
        "customer": {
            "customer_id": read.identifier(customer, "customer.id", required=False)
            if customer
            else None,
            "email": _email(payload, customer),
            "name": customer_name or _address_name(shipping) or _address_name(billing),
            "locale": _locale(payload.get("customer_locale")),
        },
        "lines": pricing.lines,
        "currency": read.currency,
        "subtotal": read.money(pricing.subtotal),
        "discounts": pricing.discounts,
        "total_discounts": read.money(pricing.total_discounts),
        "shipping_lines": pricing.shipping_lines,
        "shipping_charge": read.money(pricing.shipping_charge),
        "charges": pricing.charges,
        "total_tax": read.money(pricing.total_tax),
        "taxes_included": _taxes_included(read, payload),
        "total": read.money(read.amount(payload, "total_price")),
        "shipping_address": _shipping_address(read, shipping, customer_name),
        "billing_address": _billing_address(read, billing, customer_name),
        "shipping_speed": _shipping_speed(payload.get("shipping_lines")),
        "submitted_at": _submitted_at(read, payload),
        "payment": _payment(read, payload),
    }
    note = clip(payload.get("note"), NOTE_LENGTH)
    if note:
        mapped["notes"] = note
    if read.problems:
        raise UnmappablePayload(read.problems)
    return mapped


# -- customer ---------------------------------------------------------------------------


def _email(payload: Mapping[str, Any], customer: Mapping[str, Any] | None) -> str | None:
    for candidate in (
        payload.get("email"),
        payload.get("contact_email"),
        customer.get("email") if customer else None,
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None  # a point-of-sale or draft order: placed without e-mail


def _full_name(source: Mapping[str, Any] | None) -> str | None:
    if not source:
        return None
    parts = [source.get("first_name"), source.get("last_name")]
    return clip(" ".join(part.strip() for part in parts if isinstance(part, str)), NAME_LENGTH)


def _address_name(address: Mapping[str, Any] | None) -> str | None:
    if not address:
        return None
    return clip(address.get("name"), NAME_LENGTH) or _full_name(address)


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


# -- addresses --------------------------------------------------------------------------


def _shipping_address(
    read: Reader, address: Mapping[str, Any] | None, customer_name: str | None
) -> dict[str, Any] | None:
    """Where to deliver. Without a street there is nowhere to: a draft order whose address
    holds only a country, say, is placed as collected in store (an address can be set on
    the order later), not refused."""
    if address is None or _street(address) is None:
        return None
    mapped = _address(address, customer_name)
    for key, field in (("name", "name"), ("country", "country_code")):
        if mapped.get(key) is None:
            read.problem(f"shipping_address.{field}", _ADDRESS_GAPS[key])
    return mapped


def _billing_address(
    read: Reader, address: Mapping[str, Any] | None, customer_name: str | None
) -> dict[str, Any] | None:
    """Where the payment method is registered: informative, so one without a street, a
    name or a country is left out rather than refusing the order for it."""
    if address is None or _street(address) is None:
        return None
    mapped = _address(address, customer_name)
    return mapped if all(mapped.get(key) for key in _ADDRESS_GAPS) else None


_ADDRESS_GAPS = {
    "name": "missing (nor first_name, last_name, company, nor a customer name)",
    "country": "missing",
}


def _street(address: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """line1 and line2: `address1` and `address2`, or `address2` alone when `address1`
    is blank."""
    first = clip(address.get("address1"), NAME_LENGTH)
    second = clip(address.get("address2"), NAME_LENGTH)
    if first is None:
        return (second, None) if second else None
    return first, second


def _address(address: Mapping[str, Any], customer_name: str | None) -> dict[str, Any]:
    street = _street(address)
    assert street is not None
    country = stripped(address.get("country_code"))
    mapped: dict[str, Any] = {
        "name": _address_name(address)
        or clip(address.get("company"), NAME_LENGTH)
        or customer_name,
        "line1": street[0],
        "country": country.upper() if country else None,
    }
    optional = {
        "line2": street[1],
        "city": clip(address.get("city"), NAME_LENGTH),
        "postal_code": stripped(address.get("zip")),
        "region": clip(address.get("province_code"), NAME_LENGTH)
        or clip(address.get("province"), NAME_LENGTH),
        "phone": _phone(address.get("phone")),
    }
    mapped.update({key: value for key, value in optional.items() if value is not None})
    return mapped


def _phone(value: Any) -> str | None:
    """The phone when it is one the contract takes; otherwise dropped (a carrier can do
    without, and it is never logged: personal data)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _PHONE.validate_python(value.strip())
    except ValidationError:
        return None


# -- order facts ------------------------------------------------------------------------


def _taxes_included(read: Reader, payload: Mapping[str, Any]) -> bool:
    value = payload.get("taxes_included")
    if value is not None and not isinstance(value, bool):
        read.problem("taxes_included", "expected true or false")
    return value is True


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


def _submitted_at(read: Reader, payload: Mapping[str, Any]) -> str | None:
    if read.value(payload, "created_at", required=False) is None:
        if read.value(payload, "processed_at", required=False) is None:
            read.problem("created_at", "missing (nor processed_at)")
            return None
        return read.moment(payload, "processed_at", required=True)
    return read.moment(payload, "created_at", required=True)


# -- payment ----------------------------------------------------------------------------


def _payment(read: Reader, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What Shopify says of the payment. Always there: without it the order would be
    taken as one this system has to charge."""
    payment: dict[str, Any] = {
        "financial_status": _code(read, payload, "financial_status"),
        "gateways": _gateways(payload.get("payment_gateway_names")),
        "transactions": [
            _transaction(read, transaction, path)
            for path, transaction in read.items(payload, "transactions")
        ],
    }
    if read.in_leg(payload, "total_outstanding"):
        outstanding = read.amount(payload, "total_outstanding", required=False)
        if outstanding is not None:
            payment["outstanding"] = read.money(outstanding)
    terms = read.mapping(payload, "payment_terms")
    if terms is not None:
        payment["terms"] = _terms(read, terms)
    return payment


def _code(read: Reader, source: Mapping[str, Any], path: str) -> str | None:
    """A status or kind as the contract's lower-case code ("Paid" → "paid")."""
    text = read.text(source, path)
    if text is None:
        return None
    code = text.lower().replace(" ", "_").replace("-", "_")
    if not _CODE.match(code):
        read.problem(path, f"{text!r} is not a status code such as 'paid'")
        return None
    return code


def _gateways(names: Any) -> list[str]:
    if not isinstance(names, list):
        return []
    gateways = [clip(name, GATEWAY_LENGTH) for name in names]
    return list(dict.fromkeys(name for name in gateways if name))[:MAX_GATEWAYS]


def _transaction(read: Reader, transaction: Mapping[str, Any], path: str) -> dict[str, Any]:
    # A transaction's plain `amount` is in its own `currency`, not necessarily the shop's.
    currency = transaction.get("currency")
    mapped: dict[str, Any] = {
        "transaction_id": read.identifier(transaction, f"{path}.id"),
        "kind": _code(read, transaction, f"{path}.kind"),
        "status": _code(read, transaction, f"{path}.status"),
        "amount": read.money(
            read.amount(
                transaction,
                f"{path}.amount",
                plain_currency=currency if isinstance(currency, str) and currency else None,
            )
        ),
        "gateway": clip(read.text(transaction, f"{path}.gateway"), GATEWAY_LENGTH),
    }
    authorization = clip(transaction.get("authorization"), TITLE_LENGTH)
    if authorization:
        mapped["authorization"] = authorization
    processed_at = read.moment(transaction, f"{path}.processed_at", required=False)
    if processed_at:
        mapped["processed_at"] = processed_at
    return mapped


def _terms(read: Reader, terms: Mapping[str, Any]) -> dict[str, Any]:
    name = (
        clip(terms.get("payment_terms_name"), TITLE_LENGTH)
        or clip(terms.get("payment_terms_type"), TITLE_LENGTH)
        or "Payment terms"
    )
    mapped: dict[str, Any] = {"name": name}
    days = terms.get("due_in_days")
    if isinstance(days, int) and not isinstance(days, bool):
        mapped["due_in_days"] = days
    schedules = read.items(terms, "payment_terms.payment_schedules")
    if schedules:
        path, first = schedules[0]
        due_at = read.moment(first, f"{path}.due_at", required=False)
        if due_at:
            mapped["due_at"] = due_at
    return mapped
