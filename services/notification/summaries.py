"""The money of an order and of a refund as a customer's e-mail shows it, every amount
already written for the reader's locale; the templates only lay it out and name it.

An order's summary adds up the way a receipt does: the lines after their discounts, the
shipping after its discounts, the other charges and, when prices exclude it, the tax make
the total (the order service checked that they do). The discounts are listed too, each
with what it took off in all, as what the customer saved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from contracts.base import Money
from contracts.events.common import OrderLine
from contracts.events.order import OrderPlaced
from contracts.events.pricing import DiscountAllocation, ShippingLine, TaxLine
from contracts.events.returns import RefundIssued
from services.notification.formatting import address_lines, format_money

_Money = Callable[[int], str]
"""Writes an amount of minor units of the order's currency for the reader."""


@dataclass(frozen=True)
class LabelledAmount:
    label: str
    amount: str


@dataclass(frozen=True)
class LineSummary:
    name: str
    """The product's title as the channel names it, else its SKU."""
    quantity: int
    unit_price: str
    line_total: str
    """unit_price times quantity: the line before discounts."""
    discounts: tuple[LabelledAmount, ...]
    """What each discount took off the line (negative amounts)."""
    amount: str
    """The line after its discounts."""


@dataclass(frozen=True)
class ShippingSummary:
    title: str | None
    """The shipping method as shown at checkout; None for an order that names none."""
    price: str | None
    """After its discounts; None when the customer pays nothing for it."""


@dataclass(frozen=True)
class TaxSummary:
    amount: str
    included: bool
    """True when prices include the tax (it is part of the total, not added to it)."""
    title: str | None
    """The name every tax of the order shares (`VAT`); None when they differ."""


@dataclass(frozen=True)
class OrderSummary:
    lines: tuple[LineSummary, ...]
    discounts: tuple[LabelledAmount, ...]
    """Each discount with what it took off in all, lines and shipping together."""
    subtotal: str
    """Σ lines after their discounts."""
    shipping: tuple[ShippingSummary, ...]
    charges: tuple[LabelledAmount, ...]
    """Tips, duties and fees, as the channel names them."""
    tax: TaxSummary | None
    """None when the order carries no tax."""
    total: str
    delivery_address: tuple[str, ...] | None
    """The shipping address, line by line; None when the goods are collected at the
    warehouse."""


def order_summary(event: OrderPlaced, locale: str) -> OrderSummary:
    def money(amount_minor: int) -> str:
        return format_money(amount_minor, event.currency, locale)

    return OrderSummary(
        lines=tuple(_line_summary(line, money) for line in event.lines),
        discounts=tuple(
            LabelledAmount(title, money(-amount))
            for title, amount in _discount_totals(_allocations(event)).items()
        ),
        subtotal=money(sum(_discounted_total(line) for line in event.lines)),
        shipping=_shipping(event, money),
        charges=tuple(
            LabelledAmount(charge.title, money(charge.amount.amount_minor))
            for charge in event.charges
        ),
        tax=_tax(event, money),
        total=money(event.total.amount_minor),
        delivery_address=(
            address_lines(event.shipping_address, locale)
            if event.shipping_address is not None
            else None
        ),
    )


def _line_summary(line: OrderLine, money: _Money) -> LineSummary:
    line_total = money(line.line_total.amount_minor)
    discounted = _discounted_total(line)
    return LineSummary(
        name=line.title or line.sku,
        quantity=line.quantity,
        unit_price=money(line.unit_price.amount_minor),
        line_total=line_total,
        discounts=tuple(
            LabelledAmount(allocation.title, money(-allocation.amount.amount_minor))
            for allocation in line.discount_allocations
        ),
        amount=line_total if discounted == line.line_total.amount_minor else money(discounted),
    )


def _discounted_total(line: OrderLine) -> int:
    if line.discounted_total is not None:
        return line.discounted_total.amount_minor
    return line.line_total.amount_minor - _sum(line.discount_allocations)


def _discounted_price(shipping: ShippingLine) -> int:
    if shipping.discounted_price is not None:
        return shipping.discounted_price.amount_minor
    return shipping.price.amount_minor - _sum(shipping.discount_allocations)


def _sum(allocations: Iterable[DiscountAllocation]) -> int:
    return sum(allocation.amount.amount_minor for allocation in allocations)


def _allocations(event: OrderPlaced) -> Iterable[DiscountAllocation]:
    for line in event.lines:
        yield from line.discount_allocations
    for shipping in event.shipping_lines:
        yield from shipping.discount_allocations


def _discount_totals(allocations: Iterable[DiscountAllocation]) -> dict[str, int]:
    """What each discount took off in all, by its title, in the order they first appear.
    Allocations of one discount share its title, and so do discounts the customer would
    not tell apart."""
    totals: dict[str, int] = {}
    for allocation in allocations:
        totals[allocation.title] = totals.get(allocation.title, 0) + allocation.amount.amount_minor
    return totals


def _shipping(event: OrderPlaced, money: _Money) -> tuple[ShippingSummary, ...]:
    if event.shipping_lines:
        return tuple(
            ShippingSummary(shipping.title, _price(_discounted_price(shipping), money))
            for shipping in event.shipping_lines
        )
    charge = event.shipping_charge.amount_minor
    if charge == 0 and event.shipping_address is None:
        # Collected at the warehouse, and nothing paid for it: no shipping to speak of.
        return ()
    return (ShippingSummary(None, _price(charge, money)),)


def _price(amount_minor: int, money: _Money) -> str | None:
    return money(amount_minor) if amount_minor else None


def _tax(event: OrderPlaced, money: _Money) -> TaxSummary | None:
    if event.total_tax is None or event.total_tax.amount_minor == 0:
        return None
    titles = {tax.title for tax in _tax_lines(event)}
    return TaxSummary(
        amount=money(event.total_tax.amount_minor),
        included=event.taxes_included,
        title=titles.pop() if len(titles) == 1 else None,
    )


def _tax_lines(event: OrderPlaced) -> Iterable[TaxLine]:
    for line in event.lines:
        yield from line.tax_lines
    for shipping in event.shipping_lines:
        yield from shipping.tax_lines
    for charge in event.charges:
        yield from charge.tax_lines


@dataclass(frozen=True)
class RefundedLineSummary:
    sku: str
    quantity: int
    amount: str


@dataclass(frozen=True)
class RefundSummary:
    lines: tuple[RefundedLineSummary, ...]
    """What each returned SKU gave back, tax included."""
    goods: str | None
    """Refunded for the goods, net of tax; None when the refund does not break it down
    (and so for `tax` and `shipping`)."""
    tax: str | None
    shipping: str | None
    """Refunded for shipping, net of tax."""
    total: str


def refund_summary(event: RefundIssued, locale: str) -> RefundSummary:
    def money(amount: Money) -> str:
        return format_money(amount.amount_minor, amount.currency, locale)

    def part(amount: Money | None) -> str | None:
        return money(amount) if amount is not None else None

    return RefundSummary(
        lines=tuple(
            RefundedLineSummary(line.sku, line.quantity, money(line.amount)) for line in event.lines
        ),
        goods=part(event.goods_amount),
        tax=part(event.tax_amount),
        shipping=part(event.shipping_amount),
        total=money(event.amount),
    )
