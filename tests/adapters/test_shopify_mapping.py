"""Shopify's orders/create payload mapped to OrderSubmitted: pure, no broker."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.money import to_minor_units
from adapters.publisher import InvalidOrder
from adapters.shopify.mapping import UnmappablePayload, map_order
from adapters.shopify.reader import MoneyLeg
from adapters.shopify.sku import SkuFallback
from contracts.base import Money
from contracts.events.channel import OrderSubmitted
from contracts.events.common import OrderLine, ShippingSpeed
from contracts.events.pricing import (
    Charge,
    ChargeKind,
    DiscountAllocation,
    DiscountKind,
    DiscountTarget,
    DiscountValueType,
    ShippingLine,
)
from tests.adapters.shopify import CASES, NAMES, case, load
from tests.adapters.shopify_payloads import shopify_order


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def mapped(payload: Any, **options: Any) -> OrderSubmitted:
    return map_order(payload, channel="shopify", **options)


def problems_of(payload: Any, **options: Any) -> dict[str, str]:
    with pytest.raises(UnmappablePayload) as raised:
        map_order(payload, channel="shopify", **options)
    return {problem.field: problem.problem for problem in raised.value.problems}


def money_bag(amount: str, currency: str) -> dict[str, Any]:
    """Shopify's `*_set`: the amount on both legs (the buyer paid in the shop currency)."""
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def priced(item: dict[str, Any], name: str, amount: str, currency: str = "EUR") -> dict[str, Any]:
    """`item` with the amount `name` (and its money bag) set to `amount`."""
    return {**item, name: amount, f"{name}_set": money_bag(amount, currency)}


def total_price(amount: str, currency: str = "EUR") -> dict[str, Any]:
    return priced({}, "total_price", amount, currency)


def assert_adds_up(order: OrderSubmitted) -> None:
    """The intake formulas, computed here on their own, to the minor unit."""

    def minor(money: Money | None) -> int:
        assert money is not None
        assert money.currency == order.currency
        return money.amount_minor

    discounts = {discount.discount_id: discount for discount in order.discounts}
    allocations: list[DiscountAllocation] = []
    for line in order.lines:
        assert minor(line.line_total) == minor(line.unit_price) * line.quantity
        taken = sum(minor(allocation.amount) for allocation in line.discount_allocations)
        assert minor(line.discounted_total) == minor(line.line_total) - taken
        allocations.extend(line.discount_allocations)
    for shipping in order.shipping_lines:
        taken = sum(minor(allocation.amount) for allocation in shipping.discount_allocations)
        assert minor(shipping.discounted_price) == minor(shipping.price) - taken
        allocations.extend(shipping.discount_allocations)
    for allocation in allocations:
        if allocation.discount_id is not None:
            named = discounts[allocation.discount_id]
            assert (allocation.kind, allocation.title) == (named.kind, named.title)
    parts: list[OrderLine | ShippingLine | Charge] = [
        *order.lines,
        *order.shipping_lines,
        *order.charges,
    ]
    taxes = [tax for part in parts for tax in part.tax_lines]
    subtotal = sum(minor(line.line_total) for line in order.lines)
    total_discounts = sum(minor(allocation.amount) for allocation in allocations)
    total_tax = sum(minor(tax.amount) for tax in taxes)
    charges = sum(minor(charge.amount) for charge in order.charges)
    assert minor(order.subtotal) == subtotal
    if order.shipping_lines:
        assert minor(order.shipping_charge) == sum(minor(s.price) for s in order.shipping_lines)
    assert minor(order.total_discounts) == total_discounts
    assert minor(order.total_tax) == total_tax
    added_tax = 0 if order.taxes_included else total_tax
    assert minor(order.total) == (
        subtotal - total_discounts + minor(order.shipping_charge) + charges + added_tax
    )


# -- every fixture ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_is_mapped_with_shopifys_total_and_adds_up(name: str) -> None:
    order = mapped(load(name))

    assert_adds_up(order)
    expected = case(name)
    assert (order.total.amount_minor, order.currency) == (expected.total_minor, expected.currency)
    assert tuple(line.sku for line in order.lines) == expected.skus


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_adds_up_on_the_presentment_leg_too(name: str) -> None:
    payload = load(name)
    stated = payload["total_price_set"]["presentment_money"]

    order = mapped(payload, money=MoneyLeg.PRESENTMENT)

    assert_adds_up(order)
    assert order.currency == stated["currency_code"] == payload["presentment_currency"]
    assert order.total.amount_minor == to_minor_units(stated["amount"], order.currency)


def test_fixtures_are_listed_once_each() -> None:
    assert len(set(NAMES)) == len(CASES) == 9
    with pytest.raises(KeyError, match="no Shopify fixture"):
        load("nothing_like_it")


# -- discounts ----------------------------------------------------------------------------


def test_a_code_and_an_automatic_discount_are_joined_to_their_allocations() -> None:
    order = mapped(load("fixed_code_and_automatic_discount"))

    code, automatic = order.discounts
    assert (code.discount_id, code.kind, code.code, code.title) == (
        "0",
        DiscountKind.CODE,
        "WELCOME12",
        "WELCOME12",
    )
    assert (code.value_type, code.amount, code.target) == (
        DiscountValueType.FIXED_AMOUNT,
        Money(amount_minor=1200, currency="USD"),
        DiscountTarget.ORDER,
    )
    assert (automatic.discount_id, automatic.kind, automatic.code, automatic.title) == (
        "1",
        DiscountKind.AUTOMATIC,
        None,
        "Socks + Bottle Bundle",
    )
    assert (automatic.amount, automatic.target) == (
        Money(amount_minor=600, currency="USD"),
        DiscountTarget.LINE,
    )
    allocations = [
        [(a.amount.amount_minor, a.discount_id, a.title) for a in line.discount_allocations]
        for line in order.lines
    ]
    assert allocations == [
        [(462, "0", "WELCOME12"), (329, "1", "Socks + Bottle Bundle")],
        [(356, "0", "WELCOME12")],
        [(382, "0", "WELCOME12"), (271, "1", "Socks + Bottle Bundle")],
    ]
    discounted = [line.discounted_total for line in order.lines]
    assert discounted == [Money(amount_minor=minor, currency="USD") for minor in (3694, 2844, 3047)]
    assert (order.subtotal.amount_minor, order.total_discounts) == (
        11385,
        Money(amount_minor=1800, currency="USD"),
    )


def test_taxes_are_shopifys_per_line_and_jurisdiction_with_exact_rates() -> None:
    order = mapped(load("fixed_code_and_automatic_discount"))

    first = order.lines[0].tax_lines
    assert [(tax.title, tax.rate, tax.amount.amount_minor) for tax in first] == [
        ("New York State Tax", "0.04", 148),
        ("New York City Tax", "0.045", 166),
        ("Metropolitan Commuter Transportation District", "0.00375", 14),
    ]
    assert [tax.amount.amount_minor for tax in order.shipping_lines[0].tax_lines] == [32, 36, 3]
    # Per line and rounded there, as Shopify does: 922, where the order as a whole at
    # 8.875 % would give 921.
    assert order.total_tax == Money(amount_minor=922, currency="USD")
    assert not order.taxes_included
    assert order.total == Money(amount_minor=11306, currency="USD")


def test_a_manual_line_discount_is_not_counted_twice_with_the_legacy_total_discount() -> None:
    payload = load("manual_line_discount")
    assert payload["line_items"][0]["total_discount"] == "30.00"  # filled, as some orders are

    order = mapped(payload)

    [discount] = order.discounts
    assert (discount.kind, discount.title, discount.value_type, discount.percentage) == (
        DiscountKind.MANUAL,
        "Scratched display model",
        DiscountValueType.PERCENTAGE,
        "25",
    )
    assert discount.target is DiscountTarget.LINE
    [allocation] = order.lines[0].discount_allocations
    assert (allocation.amount.amount_minor, allocation.discount_id) == (3000, "0")
    assert order.lines[1].discount_allocations == ()
    assert order.total_discounts == Money(amount_minor=3000, currency="CAD")
    assert [tax.rate for tax in order.lines[0].tax_lines] == ["0.05", "0.09975"]


def test_a_legacy_line_discount_without_allocations_becomes_one() -> None:
    line = {**shopify_order()["line_items"][0], "discount_allocations": []}
    line = priced(line, "total_discount", "5.00")

    order = mapped(shopify_order(line_items=[line]))

    [allocation] = order.lines[0].discount_allocations
    assert (allocation.amount, allocation.discount_id, allocation.kind, allocation.title) == (
        eur(500),
        None,
        DiscountKind.MANUAL,
        "Line discount",
    )
    assert (order.lines[0].line_total, order.lines[0].discounted_total) == (eur(5980), eur(5480))
    assert order.total_discounts == eur(500)


@pytest.mark.parametrize(
    ("application", "kind", "title", "code", "target"),
    [
        (
            {"type": "discount_code", "code": "SPRING", "title": "ignored"},
            DiscountKind.CODE,
            "SPRING",
            "SPRING",
            DiscountTarget.LINE,
        ),
        (
            {"type": "automatic", "title": "Buy 2", "target_selection": "all"},
            DiscountKind.AUTOMATIC,
            "Buy 2",
            None,
            DiscountTarget.ORDER,
        ),
        (
            {"type": "script", "description": "VIP pricing", "title": None},
            DiscountKind.AUTOMATIC,
            "VIP pricing",
            None,
            DiscountTarget.LINE,
        ),
        (
            {"type": "manual", "title": "", "target_type": "shipping_line"},
            DiscountKind.MANUAL,
            "Discount",
            None,
            DiscountTarget.SHIPPING,
        ),
        (
            {"type": "a_new_type", "code": "NEWCODE"},
            DiscountKind.CODE,
            "NEWCODE",
            "NEWCODE",
            DiscountTarget.LINE,
        ),
    ],
)
def test_discount_kind_title_and_target_follow_the_application(
    application: dict[str, Any],
    kind: DiscountKind,
    title: str,
    code: str | None,
    target: DiscountTarget,
) -> None:
    defaults = {"target_type": "line_item", "target_selection": "entitled"}
    fixed = {"value": "3.0", "value_type": "fixed_amount", "allocation_method": "across"}

    [discount] = mapped(
        shopify_order(discount_applications=[defaults | fixed | application])
    ).discounts

    assert (discount.kind, discount.title, discount.code, discount.target) == (
        kind,
        title,
        code,
        target,
    )
    assert discount.amount == eur(300)


def test_percentages_and_rates_are_exact_text_from_strings_numbers_or_decimals() -> None:
    application = {"type": "automatic", "title": "Half", "value_type": "percentage"}
    line = shopify_order()["line_items"][0]
    taxes = [
        {"title": "A", "rate": "0.20", "price": "0.00"},
        {"title": "B", "rate": Decimal("0.09975"), "price": "0.00"},
        {"title": "C", "rate": 0.0725, "price": "0.00"},
        {"title": "D", "rate": 0, "price": "0.00"},
    ]
    payload = shopify_order(
        discount_applications=[{**application, "value": "12.50"}],
        line_items=[{**line, "tax_lines": taxes}],
    )

    order = mapped(payload)

    assert order.discounts[0].percentage == "12.5"
    assert [tax.rate for tax in order.lines[0].tax_lines] == ["0.2", "0.09975", "0.0725", "0"]


def test_a_fixed_discount_in_two_currencies_is_stated_by_what_it_took_off() -> None:
    # `value` carries no currency: with the buyer paying in another one, the discount's
    # amount is what its allocations took off, in the leg's currency.
    payload = load("presentment_currency")
    payload["discount_applications"][0].update(value="7.0", value_type="fixed_amount")

    shop = mapped(payload)
    presentment = mapped(payload, money=MoneyLeg.PRESENTMENT)

    assert shop.discounts[0].amount == Money(amount_minor=690, currency="USD")
    assert presentment.discounts[0].amount == Money(amount_minor=940, currency="CAD")


# -- shipping -----------------------------------------------------------------------------


def test_a_shipping_discount_is_allocated_to_the_shipping_line() -> None:
    order = mapped(load("percentage_code_and_shipping_discount"))

    [shipping] = order.shipping_lines
    [allocation] = shipping.discount_allocations
    assert (shipping.title, shipping.code, shipping.price.amount_minor) == (
        "UPS Ground",
        "UPS Ground",
        1200,
    )
    assert (allocation.amount.amount_minor, allocation.discount_id) == (500, "2")
    assert shipping.discounted_price == Money(amount_minor=700, currency="USD")
    assert order.discounts[2].target is DiscountTarget.SHIPPING
    assert order.shipping_charge == Money(amount_minor=1200, currency="USD")
    assert order.total_discounts == Money(amount_minor=450 + 2168 + 500, currency="USD")
    assert order.lines[1].discount_allocations[0].title == "Caps: buy 2, save 10%"


def without_shipping_allocations(payload: dict[str, Any], discounted: str) -> dict[str, Any]:
    shipping = payload["shipping_lines"][0]
    shipping["discount_allocations"] = []
    shipping.update(priced(shipping, "discounted_price", discounted, payload["currency"]))
    return payload


def test_a_discounted_price_without_allocations_is_the_shipping_discount() -> None:
    payload = without_shipping_allocations(load("percentage_code_and_shipping_discount"), "7.00")

    order = mapped(payload)

    [allocation] = order.shipping_lines[0].discount_allocations
    assert (allocation.amount.amount_minor, allocation.discount_id, allocation.title) == (
        500,
        "2",
        "$5 off shipping over $100",
    )
    assert order.total == Money(amount_minor=12982, currency="USD")
    assert order.discounts[2].amount == Money(amount_minor=500, currency="USD")


def test_a_discounted_price_with_no_single_shipping_discount_is_a_manual_one() -> None:
    payload = without_shipping_allocations(load("percentage_code_and_shipping_discount"), "2.50")
    del payload["discount_applications"][2]  # and no allocation names it any more

    [allocation] = mapped(payload).shipping_lines[0].discount_allocations

    assert (allocation.amount.amount_minor, allocation.discount_id) == (950, None)
    assert (allocation.kind, allocation.title) == (DiscountKind.MANUAL, "Shipping discount")


def test_a_discounted_price_equal_to_the_price_is_no_discount() -> None:
    order = mapped(shopify_order())

    assert order.shipping_lines[0].discount_allocations == ()
    assert order.shipping_lines[0].discounted_price == eur(590)


def test_shipping_charge_without_shipping_lines_is_the_shipping_total_else_zero() -> None:
    assert mapped(shopify_order(shipping_lines=[])).shipping_charge == eur(590)
    payload = shopify_order(shipping_lines=None, total_shipping_price_set=None)
    assert mapped(payload).shipping_charge == eur(0)


def test_taxes_included_and_shipping_tax_count_in_total_tax_not_in_the_total() -> None:
    order = mapped(load("tax_included_eu_vat"))

    assert order.taxes_included
    assert [tax.amount.amount_minor for tax in order.shipping_lines[0].tax_lines] == [80]
    assert order.total_tax == eur(861 + 502 + 80)
    assert order.total == eur(9480 - 948 + 499)


# -- charges ------------------------------------------------------------------------------


def test_a_tip_line_is_a_tip_charge_not_goods() -> None:
    order = mapped(load("pos_without_email_or_address"))

    assert [line.title for line in order.lines] == [
        "Flat White Blend 1 kg",
        "Glass KeepCup 12oz - Smoke",
    ]
    [tip] = order.charges
    assert (tip.kind, tip.title, tip.amount, tip.tax_lines) == (
        ChargeKind.TIP,
        "Tip",
        Money(amount_minor=500, currency="AUD"),
        (),
    )


def test_a_tip_received_without_a_tip_line_is_a_tip_charge() -> None:
    order = mapped(shopify_order(total_tip_received="2.00", **total_price("80.20")))

    [tip] = order.charges
    assert (tip.kind, tip.amount) == (ChargeKind.TIP, eur(200))
    assert_adds_up(order)


def test_duties_and_additional_fees_are_charges() -> None:
    payload = shopify_order(
        original_total_duties_set=money_bag("4.10", "EUR"),
        original_total_additional_fees_set=money_bag("1.50", "EUR"),
        **total_price("83.80"),
    )

    order = mapped(payload)

    assert [(charge.kind, charge.amount) for charge in order.charges] == [
        (ChargeKind.DUTY, eur(410)),
        (ChargeKind.FEE, eur(150)),
    ]
    assert_adds_up(order)


def test_duties_included_in_prices_and_zero_charges_are_no_charge() -> None:
    payload = shopify_order(
        duties_included=True,
        original_total_duties_set=money_bag("4.10", "EUR"),
        original_total_additional_fees_set=money_bag("0.00", "EUR"),
        total_tip_received="0.00",
    )

    assert mapped(payload).charges == ()


# -- SKUs ---------------------------------------------------------------------------------


def test_a_line_without_sku_takes_the_fallback_from_its_variant() -> None:
    order = mapped(load("line_without_sku"))

    assert [line.sku for line in order.lines] == [
        "shopify-variant:48230193847561",
        "shopify-variant:48230193880329",
        "PF-250",
    ]
    assert order.lines[1].title == "Gift Card - £25"
    assert order.lines[1].tax_lines == ()


def test_the_sku_fallback_template_can_use_the_product_and_line_ids() -> None:
    fallback = SkuFallback("p{product_id}.{line_item_id}")

    order = mapped(load("line_without_sku"), sku_fallback=fallback)

    assert order.lines[0].sku == "p9301928374656.16230193847561"


def test_a_custom_line_without_variant_is_reported_under_the_default_template() -> None:
    payload = load("line_without_sku")
    payload["line_items"][0]["variant_id"] = None

    assert problems_of(payload) == {
        "line_items.0.sku": "missing, and the SKU fallback 'shopify-variant:{variant_id}' "
        "needs variant_id, which this line has not (a custom item?)"
    }
    assert mapped(payload, sku_fallback=SkuFallback("custom:{line_item_id}")).lines[0].sku == (
        "custom:16230193847561"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("shopify-variant:{variant}", "is not one of"),
        ("{variant_id!r}", "is not one of"),
        ("{variant_id:>30}", "is not one of"),
        ("no-placeholder", "uses no placeholder"),
        ("sku/{variant_id}", "does not make a valid SKU"),
        ("x" * 50 + "{variant_id}", "does not make a valid SKU"),
        ("{variant_id", "SKU template"),
    ],
)
def test_a_sku_template_that_cannot_make_skus_is_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SkuFallback(template)


# -- customer and addresses ---------------------------------------------------------------


def test_maps_a_realistic_order_field_by_field() -> None:
    order = mapped(shopify_order())

    assert order.channel == "shopify"
    assert order.external_order_id == "5837265018931"
    assert order.partition_key() == "shopify:5837265018931"
    assert order.customer.customer_id == "7319088775219"
    assert order.customer.email == "camille.martin@example.com"
    assert order.customer.name == "Camille Martin"
    assert order.customer.locale == "fr"
    assert order.currency == "EUR"
    assert [(line.line_id, line.sku, line.title, line.quantity) for line in order.lines] == [
        ("14861257900339", "LAMP-ARC", "Lampe Arc - Noir", 2),
        ("14861257933107", "MUG-STONE", "Mug Grès", 1),
    ]
    assert order.lines[0].unit_price == eur(2990)
    assert order.lines[0].line_total == eur(5980)
    assert order.lines[1].line_total == eur(1250)
    assert order.subtotal == eur(7230)
    assert order.shipping_charge == eur(590)
    assert order.total == eur(7820)
    assert order.total_tax == eur(997 + 208 + 98)
    assert order.taxes_included
    address = order.shipping_address
    assert address is not None
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
    assert order.billing_address == address
    assert order.shipping_speed is ShippingSpeed.STANDARD
    assert order.submitted_at == datetime(2024, 5, 14, 13, 32, 8, tzinfo=UTC)
    assert order.notes == "Merci de laisser le colis chez la gardienne."
    assert order.payment is not None
    assert (order.payment.financial_status, order.payment.gateways) == (
        "paid",
        ("shopify_payments",),
    )
    assert_adds_up(order)


def test_a_pos_order_without_customer_email_or_address_is_collected_in_store() -> None:
    order = mapped(load("pos_without_email_or_address"))

    assert (order.customer.customer_id, order.customer.email, order.customer.name) == (
        None,
        None,
        None,
    )
    assert order.customer.locale == "en"
    assert (order.shipping_address, order.billing_address) == (None, None)
    assert order.shipping_lines == ()
    assert order.shipping_charge == Money(amount_minor=0, currency="AUD")


def test_ids_past_2_to_the_53_stay_exact() -> None:
    order = mapped(json.loads(json.dumps(load("pos_without_email_or_address"))))

    assert order.external_order_id == "7344915628103945217"
    assert [line.line_id for line in order.lines] == ["9007199254740993", "9007199254741217"]


def test_customer_name_and_email_fall_back_to_other_fields() -> None:
    customer = {**shopify_order()["customer"], "first_name": None, "last_name": None}

    order = mapped(shopify_order(customer=customer, email="", contact_email="c@example.org"))

    assert order.customer.name == "Camille Martin"  # the shipping address's name
    assert order.customer.email == "c@example.org"
    only_customer = mapped(shopify_order(email=None, contact_email=None))
    assert only_customer.customer.email == "camille.martin@example.com"


def test_an_order_without_any_email_is_mapped_without_one() -> None:
    customer = {**shopify_order()["customer"], "email": None}

    order = mapped(shopify_order(customer=customer, email="", contact_email=None))

    assert order.customer.email is None
    assert order.customer.customer_id == "7319088775219"


def test_a_hong_kong_address_has_no_postcode_nor_region() -> None:
    order = mapped(load("hong_kong_address"))

    address = order.shipping_address
    assert address is not None
    assert (address.line1, address.line2, address.city) == (
        "Flat 12B, Block 2, Tai Hang Terrace",
        "8 Tai Hang Road",
        "Causeway Bay",
    )
    assert (address.postal_code, address.region, address.country) == (None, None, "HK")
    assert address.phone == "+852 9123 4567"
    assert order.customer.name == "Ka Yan Chan"
    assert order.customer.locale == "zh-TW"


def test_region_is_the_province_code_else_the_province() -> None:
    jpy = mapped(load("jpy_order")).shipping_address
    address = {**shopify_order()["shipping_address"], "province_code": None, "province": "Corse"}

    assert jpy is not None and jpy.region == "JP-13"
    shipping = mapped(shopify_order(shipping_address=address)).shipping_address
    assert shipping is not None and shipping.region == "Corse"


def test_address2_is_the_street_when_address1_is_blank() -> None:
    address = {**load("hong_kong_address")["shipping_address"], "address1": "", "city": ""}

    shipping = mapped(load("hong_kong_address") | {"shipping_address": address}).shipping_address

    assert shipping is not None
    assert (shipping.line1, shipping.line2, shipping.city) == ("8 Tai Hang Road", None, None)


def test_an_address_without_a_street_is_absent_so_the_order_is_collected() -> None:
    # A draft order's address may hold a name, a phone and a country and nothing else.
    street_less = {
        **load("hong_kong_address")["shipping_address"],
        "address1": "",
        "address2": None,
        "city": "",
    }
    payload = load("hong_kong_address") | {
        "shipping_address": street_less,
        "billing_address": street_less,
    }

    order = mapped(payload)

    assert (order.shipping_address, order.billing_address) == (None, None)
    assert order.shipping_lines[0].price.amount_minor == 3000  # shipping paid is still owed


def test_a_billing_address_is_never_used_for_delivery() -> None:
    payload = shopify_order(shipping_address=None)

    order = mapped(payload)

    assert order.shipping_address is None
    assert order.billing_address is not None
    assert order.customer.name == "Camille Martin"


def test_a_phone_that_is_not_one_is_dropped() -> None:
    address = {**shopify_order()["shipping_address"], "phone": "call the concierge"}

    shipping = mapped(shopify_order(shipping_address=address)).shipping_address

    assert shipping is not None and shipping.phone is None


def test_an_address_name_falls_back_to_the_company_then_the_customer() -> None:
    nameless = {**shopify_order()["shipping_address"], "name": "", "first_name": None}
    nameless["last_name"] = None
    with_company = {**nameless, "company": "Atelier Lumière"}

    company = mapped(shopify_order(shipping_address=with_company)).shipping_address
    customer = mapped(shopify_order(shipping_address=nameless)).shipping_address

    assert company is not None and company.name == "Atelier Lumière"
    assert customer is not None and customer.name == "Camille Martin"


def test_a_shipping_address_without_country_or_any_name_is_reported() -> None:
    address = {
        **shopify_order()["shipping_address"],
        "country_code": None,
        "name": None,
        "first_name": "",
        "last_name": None,
    }

    assert problems_of(shopify_order(shipping_address=address, customer=None)) == {
        "shipping_address.name": "missing (nor first_name, last_name, company, "
        "nor a customer name)",
        "shipping_address.country_code": "missing",
    }


def test_an_incomplete_billing_address_is_left_out() -> None:
    billing = {**shopify_order()["billing_address"], "country_code": ""}

    assert mapped(shopify_order(billing_address=billing)).billing_address is None


# -- order facts --------------------------------------------------------------------------


def test_payment_facts_come_with_the_order() -> None:
    order = mapped(load("manual_line_discount"))

    payment = order.payment
    assert payment is not None
    assert (payment.financial_status, payment.gateways, payment.transactions) == (
        "pending",
        (),
        (),
    )
    assert payment.outstanding == Money(amount_minor=15982, currency="CAD")
    assert payment.terms is not None
    assert (payment.terms.name, payment.terms.due_in_days, payment.terms.due_at) == (
        "Net 30",
        30,
        datetime(2024, 7, 19, 14, 5, 33, tzinfo=UTC),
    )


def test_transactions_are_carried_when_the_payload_has_them() -> None:
    transaction = {
        "id": 7012938475610293847,
        "kind": "SALE",
        "status": "success",
        "amount": "78.20",
        "currency": "EUR",
        "gateway": "shopify_payments",
        "authorization": "ch_3PGe1x",
        "processed_at": "2024-05-14T15:32:07+02:00",
    }

    payment = mapped(shopify_order(transactions=[transaction])).payment

    assert payment is not None
    [mapped_transaction] = payment.transactions
    assert (mapped_transaction.transaction_id, mapped_transaction.kind) == (
        "7012938475610293847",
        "sale",
    )
    assert (mapped_transaction.amount, mapped_transaction.authorization) == (
        eur(7820),
        "ch_3PGe1x",
    )
    assert mapped_transaction.processed_at == datetime(2024, 5, 14, 13, 32, 7, tzinfo=UTC)


def test_submitted_at_falls_back_to_processed_at() -> None:
    order = mapped(shopify_order(created_at=None))

    assert order.submitted_at == datetime(2024, 5, 14, 13, 32, 7, tzinfo=UTC)


def test_a_yen_order_has_no_decimals() -> None:
    order = mapped(load("jpy_order"))

    assert [line.unit_price.amount_minor for line in order.lines] == [3300, 12800]
    assert order.total_tax == Money(amount_minor=585 + 1134 + 73, currency="JPY")
    assert order.total == Money(amount_minor=19700, currency="JPY")


def test_three_decimal_currencies_are_exact() -> None:
    line = without_money_bags(shopify_order()["line_items"][0])
    line = priced({**line, "quantity": 3, "tax_lines": []}, "price", "1.005", "KWD")
    shipping = without_money_bags(shopify_order()["shipping_lines"][0])
    shipping = priced({**shipping, "tax_lines": []}, "price", "1.250", "KWD")
    shipping = priced(shipping, "discounted_price", "1.250", "KWD")
    payload = shopify_order(
        currency="KWD",
        presentment_currency="KWD",
        line_items=[line],
        shipping_lines=[shipping],
        **total_price("4.265", "KWD"),
    )

    order = mapped(payload)

    assert order.lines[0].line_total == Money(amount_minor=3015, currency="KWD")
    assert order.total == Money(amount_minor=4265, currency="KWD")
    assert_adds_up(order)


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
    shipping = {**shopify_order()["shipping_lines"][0], "code": code, "title": title}

    assert mapped(shopify_order(shipping_lines=[shipping])).shipping_speed is speed


@pytest.mark.parametrize(
    ("customer_locale", "locale"),
    [("fr-ca", "fr-CA"), ("pt-BR", "pt-BR"), ("zh-Hant-TW", "zh"), ("", "en"), (None, "en")],
)
def test_locale_is_normalised_and_falls_back_to_english(
    customer_locale: str | None, locale: str
) -> None:
    payload = shopify_order()
    payload["customer_locale"] = customer_locale

    assert mapped(payload).customer.locale == locale


def test_long_free_text_is_cut_to_the_contracts_lengths() -> None:
    line = {**shopify_order()["line_items"][0], "name": "Lampe " * 60}

    order = mapped(shopify_order(line_items=[line], note="Merci. " * 400))

    assert order.lines[0].title is not None and len(order.lines[0].title) == 255
    assert order.notes is not None and len(order.notes) == 2000
    assert order.notes.endswith("…")


def test_unknown_and_newer_shopify_fields_are_ignored() -> None:
    payload = shopify_order(brand_new_field={"anything": [1, 2]}, line_item_groups=[])
    payload["line_items"][0]["sales_line_item_group_id"] = 4

    assert mapped(payload).lines == mapped(shopify_order()).lines


# -- money legs ---------------------------------------------------------------------------


def test_the_shop_leg_reads_shop_money_and_the_presentment_leg_presentment_money() -> None:
    shop = mapped(load("presentment_currency"))
    presentment = mapped(load("presentment_currency"), money=MoneyLeg.PRESENTMENT)

    assert (shop.currency, presentment.currency) == ("USD", "CAD")
    assert [line.unit_price.amount_minor for line in shop.lines] == [4500, 1200]
    assert [line.unit_price.amount_minor for line in presentment.lines] == [6100, 1650]
    assert (shop.total.amount_minor, presentment.total.amount_minor) == (8148, 11114)
    assert (shop.total_tax, presentment.total_tax) == (
        Money(amount_minor=938, currency="USD"),
        Money(amount_minor=1279, currency="CAD"),
    )
    assert shop.payment is not None and shop.payment.outstanding is not None
    # Shopify states what is outstanding in the shop currency only.
    assert presentment.payment is not None and presentment.payment.outstanding is None


def test_plain_amounts_serve_both_legs_when_the_buyer_paid_in_the_shop_currency() -> None:
    payload = json.loads(json.dumps(shopify_order()), object_hook=without_money_bags)

    shop = mapped(payload)
    presentment = mapped(payload, money=MoneyLeg.PRESENTMENT)

    assert shop.total == presentment.total == eur(7820)
    assert shop.lines == presentment.lines


def without_money_bags(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.endswith("_set")}


def test_the_presentment_leg_without_presentment_amounts_is_reported() -> None:
    payload = load("presentment_currency")
    for line in payload["line_items"]:
        del line["price_set"]["presentment_money"]
    del payload["total_price_set"]

    problems = problems_of(payload, money=MoneyLeg.PRESENTMENT)

    assert problems == {
        "line_items.0.price_set": "no presentment_money, and line_items.0.price is in USD, "
        "not the presentment currency CAD",
        "line_items.1.price_set": "no presentment_money, and line_items.1.price is in USD, "
        "not the presentment currency CAD",
        "total_price_set": "no presentment_money, and total_price is in USD, not the "
        "presentment currency CAD",
    }
    assert mapped(payload).total.amount_minor == 8148  # the shop leg still reads


def test_the_presentment_leg_needs_the_presentment_currency() -> None:
    assert problems_of(shopify_order(presentment_currency=None), money=MoneyLeg.PRESENTMENT) == {
        "presentment_currency": "missing"
    }


def test_an_amount_in_another_currency_than_its_leg_is_reported() -> None:
    line = {**shopify_order()["line_items"][0]}
    line["price_set"] = money_bag("29.90", "USD")

    assert problems_of(shopify_order(line_items=[line])) == {
        "line_items.0.price_set.shop_money.currency_code": "USD, not the order's EUR"
    }


# -- what cannot be mapped ----------------------------------------------------------------


def test_missing_line_items_are_reported_by_name() -> None:
    assert problems_of(shopify_order(line_items=None)) == {"line_items": "missing"}
    assert problems_of(shopify_order(line_items=[])) == {
        "line_items": "empty: an order needs at least one line item"
    }


def test_an_order_of_tips_only_is_reported() -> None:
    payload = load("pos_without_email_or_address")
    payload["line_items"] = [item for item in payload["line_items"] if item["name"] == "Tip"]

    assert problems_of(payload) == {"line_items": "only tips: an order needs at least one item"}


def test_reports_every_problem_at_once_with_its_shopify_path() -> None:
    line = without_money_bags(shopify_order()["line_items"][0])
    allocation = {"amount": "1.234", "discount_application_index": 0}
    broken_lines = [
        {**line, "sku": 42},
        {**line, "quantity": "2", "price": "29.999"},
        {**line, "price": 29.9},
        {**line, "discount_allocations": [allocation, {**allocation, "amount": "1.00"}]},
        {**line, "discount_allocations": [{"amount": "1.00", "discount_application_index": 3}]},
        {**line, "tax_lines": [{"title": "TVA", "price": "abc", "rate": None}]},
        "not a line",
    ]
    payload = shopify_order(
        line_items=broken_lines,
        discount_applications=[{"type": "manual", "value_type": "percentage", "value": "ten"}],
        created_at="yesterday",
        financial_status=None,
        taxes_included="yes",
    )

    assert problems_of(payload) == {
        "line_items.0.sku": "expected a string",
        "line_items.1.quantity": "expected an integer, got a string",
        "line_items.1.price": "'29.999' has more than 2 decimal places for EUR",
        "line_items.2.price": "expected a decimal string such as '19.99', got float",
        "line_items.3.discount_allocations.0.amount": "'1.234' has more than 2 decimal places "
        "for EUR",
        "line_items.4.discount_allocations.0.discount_application_index": "3 names none of "
        "the 1 discount_applications",
        "line_items.5.tax_lines.0.rate": "missing",
        "line_items.5.tax_lines.0.price": "'abc' is not a decimal number such as '19.99'",
        "line_items.6": "expected a JSON object",
        "discount_applications.0.value": "'ten' is not a decimal number such as '0.2'",
        "taxes_included": "expected true or false",
        "created_at": "not an ISO 8601 date and time",
        "financial_status": "missing",
    }


def test_discounts_larger_than_what_they_discount_are_reported() -> None:
    line = shopify_order()["line_items"][0]
    allocation = {"amount": "60.00", "discount_application_index": 0}
    application = {"type": "manual", "title": "All", "value_type": "fixed_amount", "value": "60"}

    problems = problems_of(
        shopify_order(
            line_items=[{**line, "discount_allocations": [allocation]}],
            discount_applications=[application],
        )
    )

    assert problems == {
        "line_items.0.discount_allocations": "take off 6000 in all, more than the 5980 they "
        "discount"
    }


def test_unknown_currency_is_reported_and_its_amounts_not_guessed() -> None:
    assert problems_of(shopify_order(currency="XYZ")) == {
        "currency": "'XYZ' is not an ISO 4217 currency code"
    }


def test_a_missing_total_is_reported() -> None:
    assert problems_of(shopify_order(total_price=None, total_price_set=None)) == {
        "total_price": "missing"
    }


def test_payload_that_is_not_an_object_is_reported() -> None:
    assert problems_of(["an", "array"]) == {"payload": "expected a JSON object (an order)"}


def test_mapped_order_that_breaks_the_contract_reports_contract_fields() -> None:
    address = {**shopify_order()["shipping_address"], "country_code": "XX"}
    payload = shopify_order(email="not-an-email", contact_email=None, shipping_address=address)

    with pytest.raises(InvalidOrder) as raised:
        mapped(payload)

    fields = {problem.field for problem in raised.value.problems}
    assert fields == {"customer.email", "shipping_address.country"}


# -- orders as Shopify computes them, at random --------------------------------------------

EXPONENTS = {"USD": 2, "JPY": 0, "KWD": 3, "CHF": 2}
RATES = [Decimal("0.05"), Decimal("0.0725"), Decimal("0.09975"), Decimal("0.19"), Decimal("0.2")]


def written(minor: int, currency: str) -> str:
    exponent = EXPONENTS[currency]
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def rounded(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def spread(amount: int, bases: list[int]) -> list[int]:
    """`amount` (at most their sum) across `bases` in proportion, the remainder one unit
    at a time to the first that have room."""
    whole = sum(bases)
    shares = [amount * base // whole if whole else 0 for base in bases]
    while sum(shares) < amount:
        roomy = next(index for index, base in enumerate(bases) if shares[index] < base)
        shares[roomy] += 1
    return shares


@st.composite
def shopify_orders(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """An orders/create body computed the way Shopify computes one (discounts spread
    across lines, tax per line and rate, rounded half up), and its total in minor units.
    Amounts are sometimes in money bags, sometimes plain only; optional fields are null,
    "" or missing."""
    currency = draw(st.sampled_from(sorted(EXPONENTS)))
    included = draw(st.booleans())
    rates = draw(st.lists(st.sampled_from(RATES), max_size=2, unique=True))
    bags = draw(st.booleans())

    def amount(item: dict[str, Any], name: str, minor: int) -> None:
        item[name] = written(minor, currency)
        if bags:
            item[f"{name}_set"] = money_bag(written(minor, currency), currency)

    prices = draw(st.lists(st.integers(0, 50_000), min_size=1, max_size=4))
    quantities = [draw(st.integers(1, 4)) for _ in prices]
    remaining = [price * quantity for price, quantity in zip(prices, quantities, strict=True)]
    shipping_prices = draw(st.lists(st.integers(0, 3_000), max_size=2))
    shipping_left = list(shipping_prices)
    applications: list[dict[str, Any]] = []
    line_allocations: list[list[tuple[int, int]]] = [[] for _ in prices]
    shipping_allocations: list[list[tuple[int, int]]] = [[] for _ in shipping_prices]
    for index in range(draw(st.integers(0, 3))):
        on_shipping = bool(shipping_prices) and draw(st.booleans())
        targets = shipping_left if on_shipping else remaining
        chosen = sorted(draw(st.sets(st.integers(0, len(targets) - 1), min_size=1)))
        percentage = draw(st.booleans())
        base = sum(targets[position] for position in chosen)
        if percentage:
            value = draw(st.integers(1, 100))
            total_off = rounded(Decimal(base) * value / 100)
        else:
            value = draw(st.integers(0, 10_000))
            total_off = min(value, base)
        applications.append(
            {
                "target_type": "shipping_line" if on_shipping else "line_item",
                "type": draw(st.sampled_from(["discount_code", "automatic", "manual", "script"])),
                "value": str(value) if percentage else written(value, currency),
                "value_type": "percentage" if percentage else "fixed_amount",
                "allocation_method": "across",
                "target_selection": draw(st.sampled_from(["all", "entitled", "explicit"])),
                "title": draw(st.sampled_from([None, "", "Sale"])),
                "code": draw(st.sampled_from([None, "CODE10"])),
            }
        )
        allocations = shipping_allocations if on_shipping else line_allocations
        for position, share in zip(
            chosen, spread(total_off, [targets[p] for p in chosen]), strict=True
        ):
            targets[position] -= share
            allocations[position].append((share, index))

    def taxes(net: int) -> list[dict[str, Any]]:
        found = []
        for rate in rates:
            minor = rounded(net * rate / (1 + rate) if included else net * rate)
            tax: dict[str, Any] = {"title": f"Tax {rate}", "rate": float(rate)}
            amount(tax, "price", minor)
            found.append(tax)
        return found

    def allocated(shares: list[tuple[int, int]]) -> list[dict[str, Any]]:
        found = []
        for share, index in shares:
            allocation: dict[str, Any] = {"discount_application_index": index}
            amount(allocation, "amount", share)
            found.append(allocation)
        return found

    line_items = []
    for position, (price, quantity) in enumerate(zip(prices, quantities, strict=True)):
        item: dict[str, Any] = {
            "id": draw(st.integers(1, 2**63 - 1)),
            "variant_id": draw(st.integers(1, 2**63 - 1)),
            "quantity": quantity,
            "sku": draw(st.sampled_from([None, "", "  ", f"SKU-{position}"])),
            "name": draw(st.sampled_from([None, "", "Item"])),
            "discount_allocations": allocated(line_allocations[position]),
            "tax_lines": taxes(remaining[position]),
            "total_discount": draw(st.sampled_from(["0.00", None])),
        }
        amount(item, "price", price)
        line_items.append(item)
    shipping_lines = []
    for position, price in enumerate(shipping_prices):
        shipping: dict[str, Any] = {
            "title": draw(st.sampled_from(["Standard", "", None])),
            "code": None,
            "discount_allocations": allocated(shipping_allocations[position]),
            "tax_lines": taxes(shipping_left[position]),
        }
        amount(shipping, "price", price)
        # Before or after its discounts, as API versions differ; or not sent at all.
        discounted = draw(st.sampled_from([None, price, shipping_left[position]]))
        if discounted is not None:
            amount(shipping, "discounted_price", discounted)
        shipping_lines.append(shipping)
    tip = draw(st.integers(0, 500))
    tax = sum(
        tax_minor
        for part in (*line_items, *shipping_lines)
        for tax_minor in (to_minor_units(t["price"], currency) for t in part["tax_lines"])
    )
    total = sum(remaining) + sum(shipping_left) + tip + (0 if included else tax)
    payload: dict[str, Any] = {
        "id": draw(st.integers(1, 2**63 - 1)),
        "currency": currency,
        "presentment_currency": currency,
        "customer": draw(st.sampled_from([None, {}, {"id": 1, "first_name": "", "email": ""}])),
        "email": draw(st.sampled_from([None, "", "buyer@example.com"])),
        "contact_email": None,
        "created_at": "2025-01-23T22:16:37-05:00",
        "financial_status": draw(st.sampled_from(["paid", "pending", "authorized"])),
        "taxes_included": included,
        "discount_applications": applications,
        "line_items": line_items,
        "shipping_lines": shipping_lines,
        "shipping_address": draw(st.sampled_from([None, {"address1": "", "country_code": ""}])),
        "billing_address": None,
    }
    amount(payload, "total_price", total)
    amount(payload, "total_tip_received", tip)
    return payload, total


@settings(max_examples=300, deadline=None)
@given(shopify_orders(), st.sampled_from(list(MoneyLeg)))
def test_orders_computed_as_shopify_does_are_mapped_to_their_total_and_add_up(
    drawn: tuple[dict[str, Any], int], leg: MoneyLeg
) -> None:
    payload, total = drawn

    order = mapped(copy.deepcopy(payload), money=leg)

    assert order.total.amount_minor == total
    assert_adds_up(order)
