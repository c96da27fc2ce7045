"""Shopify `orders/create` bodies, written after Shopify's documented REST order resource
(money bags on both legs, nulls and empty strings where Shopify sends them), each
consistent to the minor unit the way Shopify computes (tax per line and per
jurisdiction, discounts allocated across lines).

    from tests.adapters.shopify import CASES, body, load

    for case in CASES:
        payload = load(case.name)  # a fresh dict: change `id` to make a new order
        ...  # placed with total == (case.total_minor, case.currency); stock case.skus

`total_minor`, `currency` and `skus` are what the receiver publishes with its default
settings (shop money, SKU fallback `shopify-variant:{variant_id}`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    total_minor: int
    currency: str
    skus: tuple[str, ...]


CASES = (
    Case(
        "fixed_code_and_automatic_discount",
        "a fixed code and an automatic discount allocated across lines; New York taxes "
        "added per line and jurisdiction, shipping taxed",
        11306,
        "USD",
        ("SOCK-TRL-CH-M", "BEANIE-MER-MOSS", "BOTTLE-750"),
    ),
    Case(
        "manual_line_discount",
        "a draft order with a manual 25 % discount on one line (its legacy total_discount "
        "filled too); Quebec GST and QST added; net 30 terms, payment pending",
        15982,
        "CAD",
        ("ORG-WAL-DM", "COAST-LTH-4"),
    ),
    Case(
        "percentage_code_and_shipping_discount",
        "a percentage code across all lines, an automatic discount on one line, and a "
        "shipping fee with a shipping discount; no sales tax (Oregon)",
        12982,
        "USD",
        ("PACK-CNV-OLV", "CAP-WL-RST", "PIN-ENM-01"),
    ),
    Case(
        "tax_included_eu_vat",
        "German VAT included in prices, shipping taxed, a percentage code",
        9031,
        "EUR",
        ("CUSH-LIN-SND-50", "CANDLE-BW"),
    ),
    Case(
        "line_without_sku",
        "one line with sku null, a gift card with sku ''; UK VAT included",
        6995,
        "GBP",
        ("shopify-variant:48230193847561", "shopify-variant:48230193880329", "PF-250"),
    ),
    Case(
        "pos_without_email_or_address",
        "a point-of-sale sale: no e-mail, customer or address, a card tip; Australian GST "
        "included; ids past 2^53",
        7195,
        "AUD",
        ("FWB-1KG", "KEEPCUP-12-SMK"),
    ),
    Case(
        "hong_kong_address",
        "a Hong Kong address without postcode or province; a fixed code across lines",
        50300,
        "HKD",
        ("TEA-JADE-SET", "OOLONG-SMP-3"),
    ),
    Case(
        "jpy_order",
        "yen, no decimals; consumption tax included",
        19700,
        "JPY",
        ("CHASEN-SET", "TETSUBIN-065"),
    ),
    Case(
        "presentment_currency",
        "shop in USD, buyer paying in CAD (each leg rounded on its own); Ontario HST added",
        8148,
        "USD",
        ("VEST-DWN-NVY-L", "GLOVE-THM-M"),
    ),
)
NAMES = tuple(case.name for case in CASES)


def case(name: str) -> Case:
    return next(known for known in CASES if known.name == name)


def body(name: str) -> bytes:
    """The fixture's bytes, as Shopify would send them."""
    if name not in NAMES:
        raise KeyError(f"no Shopify fixture {name!r}; there are {', '.join(NAMES)}")
    return (FOLDER / f"{name}.json").read_bytes()


def load(name: str) -> dict[str, Any]:
    """The fixture as a new dict (amounts are strings; tax rates floats, as `json.loads`
    reads JSON numbers)."""
    payload: dict[str, Any] = json.loads(body(name))
    return payload
