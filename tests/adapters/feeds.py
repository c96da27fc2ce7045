"""Rows of a marketplace feed for the importer tests, and the money formulas every
imported order must satisfy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from contracts.base import Money
from contracts.events.channel import OrderSubmitted

EXAMPLES = Path(__file__).parents[2] / "adapters" / "examples"
EXAMPLE = EXAMPLES / "marketplace-feed.csv"
TAXED_EXAMPLE = EXAMPLES / "marketplace-feed-taxed.csv"
NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def row(**changes: str) -> dict[str, str]:
    values = {
        "external_order_id": "MP-1",
        "customer_id": "cus-1",
        "customer_email": "ada@example.com",
        "customer_name": "Ada Lovelace",
        "locale": "en",
        "currency": "EUR",
        "sku": "SKU-A",
        "quantity": "2",
        "unit_price": "19.99",
        "shipping_charge": "4.90",
        "ship_name": "Ada Lovelace",
        "ship_line1": "12 rue de la Paix",
        "ship_line2": "",
        "ship_city": "Paris",
        "ship_postal_code": "75002",
        "ship_country": "FR",
        "shipping_speed": "standard",
    }
    return values | changes


def assert_amounts_add_up(order: OrderSubmitted) -> None:
    """The order's amounts satisfy the formulas the order service checks at intake."""

    def minor(money: Money | None) -> int:
        return 0 if money is None else money.amount_minor

    discounts = {discount.discount_id: discount for discount in order.discounts}
    allocations = [a for line in order.lines for a in line.discount_allocations] + [
        a for shipping in order.shipping_lines for a in shipping.discount_allocations
    ]
    for line in order.lines:
        assert minor(line.line_total) == minor(line.unit_price) * line.quantity
        allocated = sum(minor(allocation.amount) for allocation in line.discount_allocations)
        discounted = line.discounted_total or line.line_total
        assert minor(discounted) == minor(line.line_total) - allocated
    for shipping in order.shipping_lines:
        allocated = sum(minor(allocation.amount) for allocation in shipping.discount_allocations)
        assert minor(shipping.discounted_price) == minor(shipping.price) - allocated
    for allocation in allocations:
        if allocation.discount_id is not None:
            named = discounts[allocation.discount_id]
            assert (allocation.kind, allocation.title) == (named.kind, named.title)
    for discount_id, discount in discounts.items():
        shares = [minor(a.amount) for a in allocations if a.discount_id == discount_id]
        assert sum(shares) == minor(discount.amount)
    tax_lines = (
        [tax for line in order.lines for tax in line.tax_lines]
        + [tax for shipping in order.shipping_lines for tax in shipping.tax_lines]
        + [tax for charge in order.charges for tax in charge.tax_lines]
    )
    subtotal = sum(minor(line.line_total) for line in order.lines)
    assert minor(order.subtotal) == subtotal
    if order.shipping_lines:
        assert minor(order.shipping_charge) == sum(minor(s.price) for s in order.shipping_lines)
    assert minor(order.total_discounts) == sum(minor(a.amount) for a in allocations)
    assert minor(order.total_tax) == sum(minor(tax.amount) for tax in tax_lines)
    added_tax = 0 if order.taxes_included else minor(order.total_tax)
    charges = sum(minor(charge.amount) for charge in order.charges)
    assert minor(order.total) == (
        subtotal - minor(order.total_discounts) + minor(order.shipping_charge) + charges + added_tax
    )
