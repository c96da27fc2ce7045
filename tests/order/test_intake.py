"""Intake without I/O: the amounts of a submission against their formulas, the discounts
its allocations name, and the per-country address rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events.order import OrderRejectionCode
from services.order.addresses import PostalAddress, address_rejections
from services.order.intake import (
    Allocation,
    Charge,
    Discount,
    Line,
    Money,
    Rejection,
    RejectionCode,
    ShippingLine,
    Submission,
    rejections,
    totals,
)

SELLABLE = frozenset({"SKU-A", "SKU-B", "SKU-C"})
EVERY_COUNTRY: frozenset[str] = frozenset()


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


def line(line_id: str, sku: str, quantity: int, unit: int, **changes: Any) -> Line:
    return replace(Line(line_id, sku, quantity, eur(unit), eur(unit * quantity)), **changes)


SPRING = Discount("0", "code", "SPRING10")


def spring(amount: int) -> Allocation:
    return Allocation(eur(amount), "0", "code", "SPRING10")


def submission(
    lines: tuple[Line, ...] = (line("1", "SKU-A", 2, 1000), line("2", "SKU-B", 1, 500)),
    **changes: Any,
) -> Submission:
    """A consistent submission (its totals computed by the formulas), then `changes`."""
    draft = Submission("EUR", lines, eur(0), eur(490), eur(0), discounts=(SPRING,))
    draft = replace(draft, **{k: v for k, v in changes.items() if k not in TOTALS})
    computed = totals(draft)
    consistent = replace(
        draft,
        subtotal=eur(computed.subtotal),
        shipping_charge=eur(computed.shipping_charge),
        total=eur(computed.total),
    )
    return replace(consistent, **{k: v for k, v in changes.items() if k in TOTALS})


TOTALS = {"subtotal", "shipping_charge", "total", "total_discounts", "total_tax"}


def codes(found: tuple[Rejection, ...]) -> list[tuple[str, str | None]]:
    return [(rejection.code.value, rejection.field) for rejection in found]


def check(candidate: Submission) -> tuple[Rejection, ...]:
    return rejections(candidate, sellable_skus=SELLABLE)


# --- lines, totals and currencies ------------------------------------------------------------


def test_accepts_a_consistent_submission_of_sellable_skus() -> None:
    assert check(submission()) == ()


def test_rejection_codes_are_the_contracts_codes() -> None:
    assert {code.value for code in RejectionCode} == {code.value for code in OrderRejectionCode}


def test_rejects_two_lines_sharing_a_line_id() -> None:
    lines = (line("1", "SKU-A", 1, 100), line("1", "SKU-B", 1, 100))
    assert codes(check(submission(lines))) == [("duplicate_line", "lines.1.line_id")]


def test_rejects_a_sku_that_is_not_sellable() -> None:
    lines = (line("1", "SKU-A", 1, 100), line("2", "SKU-GONE", 1, 100))
    assert codes(check(submission(lines))) == [("unknown_sku", "lines.1.sku")]


def test_rejects_a_line_total_that_is_not_unit_price_times_quantity_naming_both_numbers() -> None:
    lines = (line("1", "SKU-A", 3, 1000, line_total=eur(2999)),)
    found = check(submission(lines))
    assert codes(found) == [("line_total_mismatch", "lines.0.line_total")]
    assert (
        found[0].message == "lines.0.line_total is 2999, but unit_price 1000 * quantity 3 is 3000"
    )


def test_rejects_a_subtotal_that_is_not_the_sum_of_line_totals() -> None:
    found = check(submission(subtotal=eur(1)))
    assert codes(found) == [("total_mismatch", "subtotal")]
    assert "is 1, but" in found[0].message and "is 2500" in found[0].message


def test_rejects_a_total_that_does_not_add_up_naming_each_term() -> None:
    found = check(submission(total=eur(2500)))
    assert codes(found) == [("total_mismatch", "total")]
    assert found[0].message == (
        "total is 2500, but subtotal 2500 - total_discounts 0 + shipping_charge 490 "
        "+ charges 0 + total_tax 0 is 2990"
    )


def test_rejects_amounts_in_another_currency_and_leaves_their_sums_unjudged() -> None:
    usd = Money(100, "USD")
    lines = (Line("1", "SKU-A", 1, usd, usd),)
    found = check(submission(lines, shipping_charge=Money(0, "USD"), total=eur(7)))
    assert codes(found) == [
        ("currency_mismatch", "lines.0.unit_price.currency"),
        ("currency_mismatch", "lines.0.line_total.currency"),
        ("currency_mismatch", "shipping_charge.currency"),
    ]


# --- discounts -------------------------------------------------------------------------------


def test_places_line_discounts_and_an_order_discount_spread_across_lines() -> None:
    lines = (
        line("1", "SKU-A", 2, 1000, allocations=(spring(200),), discounted_total=eur(1800)),
        line(
            "2",
            "SKU-B",
            1,
            500,
            allocations=(spring(50), Allocation(eur(100), None, "manual", "Damaged box")),
        ),
    )
    placed = submission(lines, total_discounts=eur(350))
    assert check(placed) == ()
    assert placed.total == eur(1000 * 2 + 500 - 350 + 490)


def test_rejects_a_discounted_total_that_is_not_the_line_less_its_discounts() -> None:
    lines = (line("1", "SKU-A", 2, 1000, allocations=(spring(200),), discounted_total=eur(2000)),)
    found = check(submission(lines))
    assert codes(found) == [("line_total_mismatch", "lines.0.discounted_total")]
    assert "is 2000, but line_total - Σ discount_allocations is 1800" in found[0].message


def test_rejects_discounts_larger_than_their_line() -> None:
    lines = (line("1", "SKU-A", 1, 100, allocations=(spring(150),)),)
    assert ("line_total_mismatch", "lines.0.discount_allocations") in codes(
        check(submission(lines))
    )


def test_rejects_a_total_discounts_that_is_not_the_sum_of_every_allocation() -> None:
    lines = (line("1", "SKU-A", 1, 1000, allocations=(spring(100),)),)
    shipping = (ShippingLine(eur(490), allocations=(spring(90),)),)
    found = check(submission(lines, shipping_lines=shipping, total_discounts=eur(100)))
    assert codes(found) == [("total_mismatch", "total_discounts")]
    assert "is 100, but" in found[0].message and "is 190" in found[0].message


def test_rejects_an_allocation_naming_a_discount_the_order_does_not_list() -> None:
    lines = (line("1", "SKU-A", 1, 1000, allocations=(Allocation(eur(10), "9", "code", "X"),)),)
    assert codes(check(submission(lines))) == [
        ("invalid_discount", "lines.0.discount_allocations.0.discount_id")
    ]


def test_rejects_an_allocation_that_disagrees_with_its_discount() -> None:
    lines = (
        line(
            "1", "SKU-A", 1, 1000, allocations=(Allocation(eur(10), "0", "automatic", "SPRING10"),)
        ),
    )
    found = check(submission(lines))
    assert codes(found) == [("invalid_discount", "lines.0.discount_allocations.0")]


def test_rejects_two_discounts_sharing_an_id() -> None:
    found = check(submission(discounts=(SPRING, Discount("0", "automatic", "Summer"))))
    assert codes(found) == [("invalid_discount", "discounts.1.discount_id")]


# --- shipping, charges and tax ---------------------------------------------------------------


def test_shipping_charge_is_the_sum_of_the_shipping_lines_before_their_discounts() -> None:
    shipping = (
        ShippingLine(eur(490), allocations=(spring(490),), discounted_price=eur(0)),
        ShippingLine(eur(200)),
    )
    placed = submission(shipping_lines=shipping)
    assert check(placed) == ()
    assert placed.shipping_charge == eur(690)
    assert placed.total == eur(2500 - 490 + 690)
    assert codes(check(replace(placed, shipping_charge=eur(200)))) == [
        ("total_mismatch", "shipping_charge")
    ]


def test_rejects_a_shipping_discounted_price_that_does_not_add_up() -> None:
    shipping = (ShippingLine(eur(490), allocations=(spring(90),), discounted_price=eur(490)),)
    assert codes(check(submission(shipping_lines=shipping))) == [
        ("total_mismatch", "shipping_lines.0.discounted_price")
    ]


def test_tax_is_added_to_the_total_unless_prices_include_it() -> None:
    lines = (line("1", "SKU-A", 2, 1000, taxes=(eur(160),)),)
    shipping = (ShippingLine(eur(490), taxes=(eur(39),)),)
    excluded = submission(lines, shipping_lines=shipping, total_tax=eur(199))
    included = submission(lines, shipping_lines=shipping, taxes_included=True, total_tax=eur(199))
    assert check(excluded) == check(included) == ()
    assert excluded.total == eur(2000 + 490 + 199)
    assert included.total == eur(2000 + 490)


def test_rejects_a_total_tax_that_is_not_the_sum_of_the_tax_lines() -> None:
    lines = (line("1", "SKU-A", 2, 1000, taxes=(eur(160),)),)
    found = check(submission(lines, total_tax=eur(150)))
    assert codes(found) == [("tax_mismatch", "total_tax")]


def test_charges_and_their_tax_count_in_the_total() -> None:
    placed = submission(charges=(Charge(eur(300), taxes=(eur(60),)),))
    assert check(placed) == ()
    assert placed.total == eur(2500 + 490 + 300 + 60)


# --- addresses -------------------------------------------------------------------------------


def address(**changes: Any) -> PostalAddress:
    return replace(PostalAddress("12 rue de la Paix", "Paris", "75002", "FR"), **changes)


def address_codes(
    candidate: PostalAddress, *, deliverable: frozenset[str] = EVERY_COUNTRY
) -> list[str | None]:
    return [
        rejection.field
        for rejection in address_rejections(
            candidate, deliverable_countries=deliverable, prefix="shipping_address"
        )
    ]


def test_rejects_an_address_in_a_country_we_do_not_deliver_to() -> None:
    assert address_codes(address(), deliverable=frozenset({"DE"})) == ["shipping_address.country"]


def test_rejects_a_blank_street_and_a_missing_city_where_the_country_needs_one() -> None:
    assert address_codes(address(line1="  ", city=None)) == [
        "shipping_address.line1",
        "shipping_address.city",
    ]


@pytest.mark.parametrize(
    ("country", "postal_code"),
    [("FR", "7500"), ("FR", "750021"), ("US", "7870"), ("GB", "SW1A"), ("DE", None), ("US", None)],
)
def test_rejects_a_postal_code_missing_or_not_in_its_countrys_format(
    country: str, postal_code: str | None
) -> None:
    assert address_codes(address(country=country, postal_code=postal_code)) == [
        "shipping_address.postal_code"
    ]


@pytest.mark.parametrize(
    ("country", "city", "postal_code"),
    [
        ("HK", "Mong Kok", None),  # Hong Kong has no postal codes
        ("AE", "Dubai", None),
        ("IE", "Dublin", None),  # Eircodes are optional
        ("SG", None, "018989"),  # Singapore addresses have no city
        ("GB", "London", "sw1a 1aa"),  # case and spacing as customers type them
        ("NL", "Amsterdam", "1012AB"),
        ("US", "Austin", "78701-1234"),
        ("JP", "Chiyoda", "100-0001"),
        ("BR", "São Paulo", "01310-100"),
    ],
)
def test_accepts_addresses_as_each_country_writes_them(
    country: str, city: str | None, postal_code: str | None
) -> None:
    assert address_codes(address(country=country, city=city, postal_code=postal_code)) == []


def test_names_an_example_of_the_countrys_postal_codes() -> None:
    [rejection] = address_rejections(
        address(country="GB", postal_code="12345"),
        deliverable_countries=EVERY_COUNTRY,
        prefix="shipping_address",
    )
    assert rejection.message.startswith("'12345' is not a postal code of GB (for example ")


# --- orders as channels compute them ---------------------------------------------------------

CENT = Decimal(1)


def _rounded(value: Decimal) -> int:
    return int(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _spread(amount: int, weights: list[int]) -> list[int]:
    """An order-level discount across lines in proportion to their amounts, the cents left
    over going to the largest lines: the allocations add up to the discount exactly and
    never exceed a line."""
    whole = sum(weights)
    shares = [amount * weight // whole if whole else 0 for weight in weights]
    largest_first = sorted(range(len(weights)), key=lambda index: -weights[index])
    for index in largest_first[: amount - sum(shares)]:
        shares[index] += 1
    return shares


def _tax(amount: int, rate: Decimal, *, included: bool) -> int:
    if included:
        return amount - _rounded(Decimal(amount) / (1 + rate))
    return _rounded(amount * rate)


@st.composite
def channel_orders(draw: st.DrawFn) -> Submission:
    """An order computed the way a channel computes it: line discounts, an order discount
    spread across the lines, a shipping line with its own discount, a tax rate per line,
    tax added on top or included, rounded per line."""
    included = draw(st.booleans())
    rate = Decimal(draw(st.sampled_from(["0", "0.05", "0.0725", "0.1", "0.2", "0.21"])))
    count = draw(st.integers(1, 4))
    drafts = []
    for index in range(count):
        quantity = draw(st.integers(1, 5))
        unit = draw(st.integers(0, 50_000))
        gross = unit * quantity
        line_discount = draw(st.integers(0, gross))
        drafts.append((index, quantity, unit, gross, line_discount))
    after_line = [gross - discount for _i, _q, _u, gross, discount in drafts]
    order_discount = draw(st.integers(0, sum(after_line)))
    order_shares = _spread(order_discount, after_line)
    lines = []
    for (index, quantity, unit, gross, line_discount), share in zip(
        drafts, order_shares, strict=True
    ):
        allocations = tuple(
            allocation
            for allocation in (
                Allocation(eur(line_discount), None, "manual", "Line discount"),
                spring(share),
            )
            if allocation.amount.amount_minor
        )
        net = gross - line_discount - share
        lines.append(
            Line(
                str(index + 1),
                "SKU-A",
                quantity,
                eur(unit),
                eur(gross),
                allocations=allocations,
                discounted_total=eur(net),
                taxes=(eur(_tax(net, rate, included=included)),),
            )
        )
    price = draw(st.integers(0, 2_000))
    shipping_discount = draw(st.integers(0, price))
    shipping_net = price - shipping_discount
    shipping = ShippingLine(
        eur(price),
        allocations=(spring(shipping_discount),) if shipping_discount else (),
        discounted_price=eur(shipping_net),
        taxes=(eur(_tax(shipping_net, rate, included=included)),),
    )
    tax = sum(line.taxes[0].amount_minor for line in lines) + shipping.taxes[0].amount_minor
    discounts = order_discount + shipping_discount + sum(draft[4] for draft in drafts)
    subtotal = sum(draft[3] for draft in drafts)
    return Submission(
        "EUR",
        tuple(lines),
        subtotal=eur(subtotal),
        shipping_charge=eur(price),
        total=eur(subtotal - discounts + price + (0 if included else tax)),
        shipping_lines=(shipping,),
        discounts=(SPRING,),
        taxes_included=included,
        total_discounts=eur(discounts),
        total_tax=eur(tax),
    )


@settings(max_examples=300, deadline=None)
@given(channel_orders())
def test_every_order_a_channel_computes_consistently_is_placed(order: Submission) -> None:
    assert check(order) == ()


def _off_by(money: Money | None, delta: int) -> Money:
    assert money is not None
    return Money(money.amount_minor + delta, money.currency)


def _break_line_discounted_total(order: Submission, delta: int) -> Submission:
    first = order.lines[0]
    broken = replace(first, discounted_total=_off_by(first.discounted_total, delta))
    return replace(order, lines=(broken, *order.lines[1:]))


def _break_tax_line(order: Submission, delta: int) -> Submission:
    first = order.lines[0]
    broken = replace(first, taxes=(_off_by(first.taxes[0], abs(delta)),))
    return replace(order, lines=(broken, *order.lines[1:]))


def _break_total(name: str) -> Callable[[Submission, int], Submission]:
    def breaking(order: Submission, delta: int) -> Submission:
        changes: dict[str, Any] = {name: _off_by(getattr(order, name), delta)}
        return replace(order, **changes)

    return breaking


Break = tuple[Callable[[Submission, int], Submission], tuple[str, str]]

# One amount off, and the reason that must name it.
BREAKS: dict[str, Break] = {
    "total": (_break_total("total"), ("total_mismatch", "total")),
    "subtotal": (_break_total("subtotal"), ("total_mismatch", "subtotal")),
    "shipping_charge": (_break_total("shipping_charge"), ("total_mismatch", "shipping_charge")),
    "total_discounts": (_break_total("total_discounts"), ("total_mismatch", "total_discounts")),
    "total_tax": (_break_total("total_tax"), ("tax_mismatch", "total_tax")),
    "discounted_total": (
        _break_line_discounted_total,
        ("line_total_mismatch", "lines.0.discounted_total"),
    ),
    "a tax line": (_break_tax_line, ("tax_mismatch", "total_tax")),
}


@settings(max_examples=300, deadline=None)
@given(
    channel_orders(),
    st.sampled_from(sorted(BREAKS)),
    st.integers(1, 10_000).flatmap(lambda size: st.sampled_from([size, -size])),
)
def test_every_order_with_one_amount_off_is_rejected_naming_that_amount(
    order: Submission, broken: str, delta: int
) -> None:
    breaking, reason = BREAKS[broken]
    candidate = breaking(order, delta)
    if any(money.amount_minor < 0 for money in _all_amounts(candidate)):
        return  # not a submission the contract lets through
    assert reason in codes(check(candidate))


def _all_amounts(order: Submission) -> list[Money]:
    amounts = [order.subtotal, order.shipping_charge, order.total]
    amounts += [money for money in (order.total_discounts, order.total_tax) if money]
    for item in order.lines:
        amounts += [item.line_total, *item.taxes]
        amounts += [item.discounted_total] if item.discounted_total else []
    return amounts
