"""Shopify's orders/create payload mapped to OrderSubmitted: pure, no broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.publisher import InvalidOrder
from adapters.shopify.mapping import UnmappablePayload, map_order
from contracts.base import Money
from contracts.events.common import ShippingSpeed
from tests.adapters.shopify_payloads import shopify_order


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def problems_of(payload: Any) -> dict[str, str]:
    with pytest.raises(UnmappablePayload) as raised:
        map_order(payload, channel="shopify")
    return {problem.field: problem.problem for problem in raised.value.problems}


def test_maps_a_realistic_order_field_by_field() -> None:
    order = map_order(shopify_order(), channel="shopify")

    assert order.channel == "shopify"
    assert order.external_order_id == "5837265018931"
    assert order.partition_key() == "shopify:5837265018931"
    assert order.customer.customer_id == "7319088775219"
    assert order.customer.email == "camille.martin@example.com"
    assert order.customer.name == "Camille Martin"
    assert order.customer.locale == "fr"
    assert order.currency == "EUR"
    assert [(line.line_id, line.sku, line.quantity) for line in order.lines] == [
        ("14861257900339", "LAMP-ARC", 2),
        ("14861257933107", "MUG-STONE", 1),
    ]
    assert order.lines[0].unit_price == eur(2990)
    assert order.lines[0].line_total == eur(5980)
    assert order.lines[1].line_total == eur(1250)
    assert order.subtotal == eur(7230)
    assert order.shipping_charge == eur(590)
    assert order.total == eur(7820)
    address = order.shipping_address
    assert (address.name, address.line1, address.line2) == (
        "Camille Martin",
        "12 rue de la Paix",
        "Bâtiment B",
    )
    assert (address.city, address.postal_code, address.country, address.region) == (
        "Paris",
        "75002",
        "FR",
        None,
    )
    assert address.phone == "+33 1 23 45 67 89"
    assert order.shipping_speed is ShippingSpeed.STANDARD
    assert order.submitted_at == datetime(2024, 5, 14, 13, 32, 8, tzinfo=UTC)
    assert order.notes == "Merci de laisser le colis chez la gardienne."


def test_converts_decimal_strings_exactly_with_the_currency_exponent() -> None:
    # 0.1 + 0.2 style amounts that floats get wrong, and currencies of 0 and 3 decimals.
    lines = [{**shopify_order()["line_items"][0], "price": "0.29", "quantity": 3}]
    jpy = shopify_order(
        currency="JPY",
        line_items=[{**lines[0], "price": "1500"}],
        subtotal_price="4500",
        total_price="5200",
        total_shipping_price_set={"shop_money": {"amount": "700", "currency_code": "JPY"}},
    )
    bhd = shopify_order(
        currency="BHD",
        line_items=[{**lines[0], "price": "1.005"}],
        subtotal_price="3.015",
        total_price="4.015",
        total_shipping_price_set={"shop_money": {"amount": "1.000", "currency_code": "BHD"}},
    )

    assert map_order(shopify_order(line_items=lines), channel="shopify").lines[0].line_total == eur(
        87
    )
    jpy_order = map_order(jpy, channel="shopify")
    assert (jpy_order.lines[0].unit_price.amount_minor, jpy_order.total.amount_minor) == (
        1500,
        5200,
    )
    bhd_order = map_order(bhd, channel="shopify")
    assert (bhd_order.lines[0].unit_price.amount_minor, bhd_order.subtotal.amount_minor) == (
        1005,
        3015,
    )


def test_line_discount_is_taken_off_the_line_total() -> None:
    line = {**shopify_order()["line_items"][0], "total_discount": "5.00"}

    order = map_order(shopify_order(line_items=[line]), channel="shopify")

    assert order.lines[0].unit_price == eur(2990)
    assert order.lines[0].line_total == eur(5480)


def test_shipping_charge_falls_back_to_the_shipping_lines() -> None:
    shipping_lines = [
        {"code": "Express", "title": "Chronopost Express", "price": "9.90"},
        {"code": "Extra", "title": "Gift wrap", "price": "2.00"},
    ]
    payload = shopify_order(total_shipping_price_set=None, shipping_lines=shipping_lines)

    order = map_order(payload, channel="shopify")

    assert order.shipping_charge == eur(1190)
    assert order.shipping_speed is ShippingSpeed.EXPRESS


@pytest.mark.parametrize(
    ("code", "title", "speed"),
    [
        ("Standard", "Colissimo", ShippingSpeed.STANDARD),
        ("next-day", "DHL", ShippingSpeed.NEXT_DAY),
        ("custom", "Overnight delivery", ShippingSpeed.NEXT_DAY),
        ("PRIORITY", "La Poste", ShippingSpeed.EXPRESS),
    ],
)
def test_shipping_speed_comes_from_the_first_shipping_line(
    code: str, title: str, speed: ShippingSpeed
) -> None:
    payload = shopify_order(shipping_lines=[{"code": code, "title": title, "price": "5.90"}])

    assert map_order(payload, channel="shopify").shipping_speed is speed


@pytest.mark.parametrize(
    ("customer_locale", "locale"),
    [("fr-ca", "fr-CA"), ("pt-BR", "pt-BR"), ("zh-Hant-TW", "zh"), ("", "en"), (None, "en")],
)
def test_locale_is_normalised_and_falls_back_to_english(
    customer_locale: str | None, locale: str
) -> None:
    payload = shopify_order()
    payload["customer_locale"] = customer_locale

    assert map_order(payload, channel="shopify").customer.locale == locale


def test_customer_name_and_email_fall_back_to_other_fields() -> None:
    customer = {**shopify_order()["customer"], "first_name": None, "last_name": None}

    order = map_order(
        shopify_order(customer=customer, email=None, contact_email="c@example.org"),
        channel="shopify",
    )

    assert order.customer.name == "Camille Martin"  # the shipping address's name
    assert order.customer.email == "c@example.org"


def test_missing_line_items_are_reported_by_name() -> None:
    assert problems_of(shopify_order(line_items=None)) == {"line_items": "missing"}
    assert problems_of(shopify_order(line_items=[])) == {
        "line_items": "empty: an order needs at least one line item"
    }


def test_reports_every_problem_at_once_with_its_shopify_path() -> None:
    line = shopify_order()["line_items"][0]
    broken_lines = [
        {**line, "sku": None},
        {**line, "quantity": "2", "price": "29.999"},
        {**line, "price": 29.9},
        "not a line",
    ]
    payload = shopify_order(line_items=broken_lines, customer=None, created_at="yesterday")

    assert problems_of(payload) == {
        "customer": "missing",
        "line_items.0.sku": "missing",
        "line_items.1.quantity": "expected an integer, got a string",
        "line_items.1.price": "'29.999' has more than 2 decimal places for EUR",
        "line_items.2.price": "expected a decimal string such as '19.99', got float",
        "line_items.3": "expected a JSON object",
        "created_at": "not an ISO 8601 date and time",
    }


def test_unknown_currency_is_reported_and_its_amounts_not_guessed() -> None:
    assert problems_of(shopify_order(currency="XYZ")) == {
        "currency": "'XYZ' is not an ISO 4217 currency code"
    }


def test_missing_shipping_address_and_amounts_are_reported() -> None:
    problems = problems_of(
        shopify_order(
            shipping_address=None,
            total_price=None,
            total_shipping_price_set=None,
            shipping_lines=None,
        )
    )

    assert problems == {
        "shipping_address": "missing",
        "total_price": "missing",
        "total_shipping_price_set": "missing (nor shipping_lines)",
    }


def test_address_fields_are_reported_under_the_shipping_address() -> None:
    address = {**shopify_order()["shipping_address"], "address1": "", "zip": None}

    assert problems_of(shopify_order(shipping_address=address)) == {
        "shipping_address.address1": "missing",
        "shipping_address.zip": "missing",
    }


def test_payload_that_is_not_an_object_is_reported() -> None:
    assert problems_of(["an", "array"]) == {"payload": "expected a JSON object (an order)"}


def test_mapped_order_that_breaks_the_contract_reports_contract_fields() -> None:
    address = {**shopify_order()["shipping_address"], "country_code": "XX"}
    payload = shopify_order(email="not-an-email", contact_email=None, shipping_address=address)

    with pytest.raises(InvalidOrder) as raised:
        map_order(payload, channel="shopify")

    fields = {problem.field for problem in raised.value.problems}
    assert fields == {"customer.email", "shipping_address.country"}
