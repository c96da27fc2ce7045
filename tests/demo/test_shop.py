"""The demo web shop's orders: priced as a European shop prices them, and every one of
them placed by the order service's own intake rules. Pure: no broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.base import Money
from contracts.events.common import ShippingSpeed
from contracts.events.pricing import DiscountAllocation, DiscountKind, TaxLine
from demo.catalogue import CUSTOMERS, PRODUCTS
from demo.shop import FREE_SHIPPING, WELCOME, Basket, Takings, WebShop, priced
from services.order.intake import rejections, totals
from services.order.submissions import intake_submission, shipping_address_rejections

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
PRODUCT = {product.sku: product for product in PRODUCTS}
CUSTOMER = {customer.slug: customer for customer in CUSTOMERS}
SELLABLE = frozenset(PRODUCT)  # the demo registers every product as active
EVERY_COUNTRY: frozenset[str] = frozenset()  # the order service's default


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def basket(
    customer: str,
    *items: tuple[str, int],
    speed: ShippingSpeed = ShippingSpeed.EXPRESS,
    welcome_code: bool = False,
    notes: str | None = None,
) -> Basket:
    return Basket(
        customer=CUSTOMER[customer],
        items=tuple((PRODUCT[sku], quantity) for sku, quantity in items),
        speed=speed,
        welcome_code=welcome_code,
        notes=notes,
    )


def minor(money: Money | None) -> int:
    assert money is not None, "the shop states every total of its orders"
    return money.amount_minor


def welcome(amount: int) -> DiscountAllocation:
    return DiscountAllocation(
        amount=eur(amount), discount_id="welcome", kind=DiscountKind.CODE, title="BIENVENUE10"
    )


@given(run_id=st.text(alphabet="0123456789abcdef", min_size=6, max_size=6))
def test_every_order_of_a_run_is_placed_by_the_order_intake(run_id: str) -> None:
    shop = WebShop(run_id)

    for number in range(30):
        order = shop.order(number, NOW)
        submission = intake_submission(order)
        found = rejections(
            submission,
            sellable_skus=SELLABLE,
            address_rejections=shipping_address_rejections(order.shipping_address, EVERY_COUNTRY),
        )

        assert found == ()
        computed = totals(submission)
        assert (order.total_discounts, order.total_tax, order.total) == (
            eur(computed.total_discounts),
            eur(computed.total_tax),
            eur(computed.total),
        )


def test_the_welcome_code_takes_ten_percent_off_spread_across_the_titled_lines() -> None:
    order = priced(
        basket("camille", ("LAMP-ARC", 1), ("MUG-STONE", 2), welcome_code=True),
        external_order_id="WS-1",
        submitted_at=NOW,
    )

    assert order.discounts == (WELCOME,)
    assert [line.title for line in order.lines] == ["Arc floor lamp", "Stoneware mug"]
    assert [line.line_total for line in order.lines] == [eur(12900), eur(2900)]
    assert [line.discount_allocations for line in order.lines] == [
        (welcome(1290),),
        (welcome(290),),
    ]
    assert [line.discounted_total for line in order.lines] == [eur(11610), eur(2610)]
    assert order.subtotal == eur(15800)
    assert order.total_discounts == eur(1580)
    assert order.total == eur(15800 - 1580 + 990)


def test_vat_of_the_customers_country_is_extracted_from_the_amounts_after_discounts() -> None:
    order = priced(
        basket("lena", ("LAMP-ARC", 1), welcome_code=True),
        external_order_id="WS-1",
        submitted_at=NOW,
    )

    # 116.10 EUR and 9.90 EUR of express shipping, each with 19 % German VAT inside.
    assert order.taxes_included
    assert order.lines[0].tax_lines == (TaxLine(title="MwSt.", rate="0.19", amount=eur(1854)),)
    assert order.shipping_lines[0].tax_lines == (
        TaxLine(title="MwSt.", rate="0.19", amount=eur(158)),
    )
    assert order.total_tax == eur(1854 + 158)
    assert order.total == eur(12900 - 1290 + 990)


def test_standard_shipping_is_free_from_the_threshold_through_an_automatic_discount() -> None:
    order = priced(
        basket("camille", ("VASE-GLASS", 1), ("THROW-LINEN", 1), speed=ShippingSpeed.STANDARD),
        external_order_id="WS-1",
        submitted_at=NOW,
    )

    [shipping] = order.shipping_lines
    assert order.discounts == (FREE_SHIPPING,)
    assert (shipping.title, shipping.price, shipping.discounted_price) == (
        "Standard",
        eur(490),
        eur(0),
    )
    assert shipping.discount_allocations == (
        DiscountAllocation(
            amount=eur(490),
            discount_id="free-shipping",
            kind=DiscountKind.AUTOMATIC,
            title="Free standard shipping from 100.00 EUR",
        ),
    )
    assert shipping.tax_lines == (TaxLine(title="TVA", rate="0.2", amount=eur(0)),)
    assert order.shipping_charge == eur(490)
    assert order.total_discounts == eur(490)
    assert order.total == eur(10800)


@pytest.mark.parametrize(
    ("speed", "welcome_code", "price", "vat"),
    [
        # 108.00 EUR of goods, 97.20 EUR after the code: below the threshold.
        (ShippingSpeed.STANDARD, True, 490, 82),
        (ShippingSpeed.EXPRESS, False, 990, 165),
        (ShippingSpeed.NEXT_DAY, False, 1490, 248),
    ],
)
def test_shipping_is_charged_below_the_threshold_or_when_faster_than_standard(
    speed: ShippingSpeed, welcome_code: bool, price: int, vat: int
) -> None:
    order = priced(
        basket(
            "camille",
            ("VASE-GLASS", 1),
            ("THROW-LINEN", 1),
            speed=speed,
            welcome_code=welcome_code,
        ),
        external_order_id="WS-1",
        submitted_at=NOW,
    )

    [shipping] = order.shipping_lines
    assert FREE_SHIPPING not in order.discounts
    assert (shipping.price, shipping.discount_allocations, shipping.discounted_price) == (
        eur(price),
        (),
        eur(price),
    )
    assert shipping.tax_lines == (TaxLine(title="TVA", rate="0.2", amount=eur(vat)),)
    goods = 10800 - (1080 if welcome_code else 0)
    assert order.total == eur(goods + price)


def test_the_order_is_paid_by_card_for_its_total_and_carries_the_customers_note() -> None:
    order = priced(
        basket("hugo", ("CHAIR-OAK", 2), notes="Merci de laisser le colis chez la gardienne."),
        external_order_id="WS-7",
        submitted_at=NOW,
    )

    assert order.payment is not None
    assert (order.payment.financial_status, order.payment.gateways) == ("paid", ("demo_card",))
    [sale] = order.payment.transactions
    assert (sale.transaction_id, sale.kind, sale.status, sale.amount, sale.gateway) == (
        "WS-7-sale",
        "sale",
        "success",
        order.total,
        "demo_card",
    )
    assert order.notes == "Merci de laisser le colis chez la gardienne."
    assert order.billing_address == order.shipping_address


def test_a_run_id_always_gives_the_same_orders() -> None:
    def orders_of(run_id: str) -> list[dict[str, object]]:
        shop = WebShop(run_id)
        return [
            shop.order(number, NOW).model_dump(exclude={"event_id", "occurred_at"})
            for number in range(30)
        ]

    assert orders_of("93bef6") == orders_of("93bef6")
    assert orders_of("93bef6") != orders_of("93bef7")


def test_about_a_third_of_the_orders_use_the_welcome_code_and_a_few_carry_a_note() -> None:
    orders = [
        shop.order(number, NOW)
        for shop in (WebShop(f"run{index}") for index in range(10))
        for number in range(30)
    ]

    with_code = sum(WELCOME in order.discounts for order in orders) / len(orders)
    with_note = sum(order.notes is not None for order in orders) / len(orders)
    assert 0.25 < with_code < 0.42
    assert 0.08 < with_note < 0.25


def test_the_takings_add_up_the_run_and_read_in_one_line() -> None:
    shop = WebShop("93bef6")
    orders = [shop.order(number, NOW) for number in range(5)]

    takings = shop.takings()

    assert takings == Takings(
        orders=5,
        total=eur(sum(minor(order.total) for order in orders)),
        discounts=eur(sum(minor(order.total_discounts) for order in orders)),
        tax=eur(sum(minor(order.total_tax) for order in orders)),
    )
    assert str(Takings(2, eur(12345), eur(100), eur(2000))) == (
        "2 orders, 123.45 EUR (VAT 20.00 EUR included), discounts 1.00 EUR"
    )
