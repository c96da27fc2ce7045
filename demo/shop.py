"""The demo's web shop: the orders its customers place, priced as a European web shop
prices them. Pure: no I/O, and one run id always gives the same orders.

- Prices include VAT (`taxes_included`) at the rate of the customer's country. Each line
  and the shipping line carry one tax line: the VAT inside their amount after discounts.
- About one order in three uses the welcome code, 10 % off the goods: one discount on the
  order, its amount spread across the lines in proportion to their totals.
- Shipping is a shipping line priced by speed. Standard shipping is free from 100 € of
  goods after discounts, through an automatic discount allocated to the shipping line, so
  its price stays what the shop charges for it.
- Every order is paid by card in the shop; a few carry a note from the customer.

The amounts follow the formulas of `contracts.events.pricing`, computed with
`adapters.money` as channel adapters compute them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from adapters.money import allocate, tax_amount
from contracts.base import Money
from contracts.events.channel import OrderSubmitted
from contracts.events.common import Address, Customer, OrderLine, ShippingSpeed
from contracts.events.pricing import (
    ChannelPayment,
    Discount,
    DiscountAllocation,
    DiscountKind,
    DiscountTarget,
    DiscountValueType,
    PaymentTransaction,
    ShippingLine,
    TaxLine,
)
from demo.catalogue import CUSTOMERS, NOTES, PRODUCTS, DemoCustomer, Product

CHANNEL = "webshop"
CURRENCY = "EUR"
GATEWAY = "demo_card"
WELCOME_CODE_SHARE = 1 / 3
"""Of the orders, those that use the welcome code."""
NOTE_SHARE = 1 / 6
"""Of the orders, those with a note from the customer."""


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency=CURRENCY)


@dataclass(frozen=True)
class Vat:
    title: str
    rate: str  # a decimal fraction, as the contract's TaxRate writes it


VAT = {
    "FR": Vat("TVA", "0.2"),
    "BE": Vat("TVA", "0.21"),
    "DE": Vat("MwSt.", "0.19"),
    "GB": Vat("VAT", "0.2"),
}
"""The standard rate of each country the shop delivers to. The customer's country decides,
as for a European shop's distance sales (one-stop shop)."""

WELCOME_PERCENTAGE = "10"
WELCOME = Discount(
    discount_id="welcome",
    kind=DiscountKind.CODE,
    code="BIENVENUE10",
    title="BIENVENUE10",
    value_type=DiscountValueType.PERCENTAGE,
    percentage=WELCOME_PERCENTAGE,
    target=DiscountTarget.ORDER,
)


@dataclass(frozen=True)
class ShippingRate:
    title: str
    price_minor: int


SHIPPING_RATES = {
    ShippingSpeed.STANDARD: ShippingRate("Standard", 490),
    ShippingSpeed.EXPRESS: ShippingRate("Express", 990),
    ShippingSpeed.NEXT_DAY: ShippingRate("Next day", 1490),
}
FREE_SHIPPING_FROM = 10_000
"""Goods after discounts from which standard shipping is free, in minor units."""
FREE_SHIPPING = Discount(
    discount_id="free-shipping",
    kind=DiscountKind.AUTOMATIC,
    title=f"Free standard shipping from {eur(FREE_SHIPPING_FROM)}",
    value_type=DiscountValueType.PERCENTAGE,
    percentage="100",
    target=DiscountTarget.SHIPPING,
)


@dataclass(frozen=True)
class Basket:
    """What a customer chose, before the shop prices it."""

    customer: DemoCustomer
    items: tuple[tuple[Product, int], ...]  # each product with its quantity
    speed: ShippingSpeed
    welcome_code: bool = False
    notes: str | None = None


def priced(basket: Basket, *, external_order_id: str, submitted_at: datetime) -> OrderSubmitted:
    """The basket as the shop submits it: lines with their discounts and VAT, the
    shipping line, the discounts applied, the totals and the card payment."""
    vat = VAT[basket.customer.country]
    line_totals = [product.unit_price_minor * quantity for product, quantity in basket.items]
    subtotal = sum(line_totals)
    welcome_off = _percent_of(subtotal, WELCOME_PERCENTAGE) if basket.welcome_code else 0
    lines = tuple(
        _line(str(number), product, quantity, welcome_share, vat)
        for number, ((product, quantity), welcome_share) in enumerate(
            zip(basket.items, allocate(welcome_off, line_totals), strict=True), start=1
        )
    )
    shipping = _shipping_line(basket.speed, subtotal - welcome_off, vat)
    allocations = [
        *(allocation for line in lines for allocation in line.discount_allocations),
        *shipping.discount_allocations,
    ]
    tax_lines = [*(tax for line in lines for tax in line.tax_lines), *shipping.tax_lines]
    total_discounts = _sum(allocation.amount for allocation in allocations)
    # Prices include VAT: the tax is inside the total, not added to it.
    total = subtotal - total_discounts + shipping.price.amount_minor
    customer = basket.customer
    address = Address(
        name=customer.name,
        line1=customer.street,
        city=customer.city,
        postal_code=customer.postal_code,
        country=customer.country,
    )
    return OrderSubmitted(
        channel=CHANNEL,
        external_order_id=external_order_id,
        customer=Customer(
            customer_id=f"cus-{customer.slug}",
            email=f"{customer.slug}@example.com",
            name=customer.name,
            locale=customer.locale,
        ),
        lines=lines,
        currency=CURRENCY,
        subtotal=eur(subtotal),
        shipping_charge=shipping.price,
        total=eur(total),
        discounts=tuple(
            discount
            for discount in (WELCOME, FREE_SHIPPING)
            if any(allocation.discount_id == discount.discount_id for allocation in allocations)
        ),
        shipping_lines=(shipping,),
        taxes_included=True,
        total_discounts=eur(total_discounts),
        total_tax=eur(_sum(tax.amount for tax in tax_lines)),
        shipping_address=address,
        billing_address=address,
        shipping_speed=basket.speed,
        submitted_at=submitted_at,
        notes=basket.notes,
        payment=ChannelPayment(
            financial_status="paid",
            gateways=(GATEWAY,),
            transactions=(
                PaymentTransaction(
                    transaction_id=f"{external_order_id}-sale",
                    kind="sale",
                    status="success",
                    amount=eur(total),
                    gateway=GATEWAY,
                    processed_at=submitted_at,
                ),
            ),
        ),
    )


def _line(line_id: str, product: Product, quantity: int, welcome_share: int, vat: Vat) -> OrderLine:
    line_total = product.unit_price_minor * quantity
    discounted_total = line_total - welcome_share
    return OrderLine(
        line_id=line_id,
        sku=product.sku,
        title=product.name,
        quantity=quantity,
        unit_price=eur(product.unit_price_minor),
        line_total=eur(line_total),
        discount_allocations=_allocations(WELCOME, welcome_share),
        discounted_total=eur(discounted_total),
        tax_lines=(_vat_in(discounted_total, vat),),
    )


def _shipping_line(speed: ShippingSpeed, goods: int, vat: Vat) -> ShippingLine:
    """The shipping at its rate, less the free-shipping discount when the goods after
    discounts reach its threshold."""
    rate = SHIPPING_RATES[speed]
    free = speed is ShippingSpeed.STANDARD and goods >= FREE_SHIPPING_FROM
    off = rate.price_minor if free else 0
    discounted_price = rate.price_minor - off
    return ShippingLine(
        title=rate.title,
        code=speed.value,
        price=eur(rate.price_minor),
        discount_allocations=_allocations(FREE_SHIPPING, off),
        discounted_price=eur(discounted_price),
        tax_lines=(_vat_in(discounted_price, vat),),
    )


def _allocations(discount: Discount, amount: int) -> tuple[DiscountAllocation, ...]:
    """What `discount` took off one line: nothing to list when it took nothing."""
    if amount == 0:
        return ()
    return (
        DiscountAllocation(
            amount=eur(amount),
            discount_id=discount.discount_id,
            kind=discount.kind,
            title=discount.title,
        ),
    )


def _vat_in(amount: int, vat: Vat) -> TaxLine:
    return TaxLine(
        title=vat.title, rate=vat.rate, amount=eur(tax_amount(amount, vat.rate, included=True))
    )


def _percent_of(amount: int, percentage: str) -> int:
    """`percentage` % of `amount`, rounded half up to the minor unit."""
    share = Decimal(amount) * Decimal(percentage) / 100
    return int(share.to_integral_value(rounding=ROUND_HALF_UP))


def _sum(amounts: Iterable[Money]) -> int:
    return sum(money.amount_minor for money in amounts)


def _minor(money: Money | None) -> int:
    """An order's optional total in minor units: absent means zero, as the contract says."""
    return 0 if money is None else money.amount_minor


@dataclass(frozen=True)
class Takings:
    """What the shop's orders of a run came to."""

    orders: int
    total: Money
    discounts: Money
    tax: Money

    def __str__(self) -> str:
        return (
            f"{self.orders} orders, {self.total} (VAT {self.tax} included), "
            f"discounts {self.discounts}"
        )


class WebShop:
    """The customers of one demo run ordering at random from the catalogue. Seeded with
    the run id, so that a run's orders can be built again."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.random = random.Random(run_id)
        self.orders: list[OrderSubmitted] = []

    def order(self, number: int, submitted_at: datetime) -> OrderSubmitted:
        """The next customer's order; the shop keeps it for its takings."""
        order = priced(
            self.basket(),
            external_order_id=f"demo-{self.run_id}-{number:04d}",
            submitted_at=submitted_at,
        )
        self.orders.append(order)
        return order

    def basket(self) -> Basket:
        customer = self.random.choice(CUSTOMERS)
        products = self.random.sample(PRODUCTS, k=self.random.choice((1, 1, 2, 3)))
        return Basket(
            customer=customer,
            items=tuple((product, self.random.choice((1, 1, 2))) for product in products),
            speed=self.random.choice(list(ShippingSpeed)),
            welcome_code=self.random.random() < WELCOME_CODE_SHARE,
            notes=(
                self.random.choice(NOTES[customer.locale])
                if self.random.random() < NOTE_SHARE
                else None
            ),
        )

    def takings(self) -> Takings:
        return Takings(
            orders=len(self.orders),
            total=eur(_sum(order.total for order in self.orders)),
            discounts=eur(sum(_minor(order.total_discounts) for order in self.orders)),
            tax=eur(sum(_minor(order.total_tax) for order in self.orders)),
        )
