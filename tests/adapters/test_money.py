"""Channel amounts ("19.99") to integer minor units, an amount spread across weights, and
tax at a rate: exactly."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.money import NotAnAmount, allocate, tax_amount, to_minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("19.99", "EUR", 1999),
        ("19.9", "EUR", 1990),
        ("19.990", "EUR", 1999),
        (" 7 ", "EUR", 700),
        ("0.29", "USD", 29),
        ("1500", "JPY", 1500),
        ("1.005", "BHD", 1005),
        (12, "EUR", 1200),
        (Decimal("0.1") + Decimal("0.2"), "EUR", 30),
    ],
)
def test_converts_exactly_with_the_currency_exponent(
    amount: str | int | Decimal, currency: str, minor: int
) -> None:
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("19.999", "EUR", "more than 2 decimal places for EUR"),
        ("1.5", "JPY", "more than 0 decimal places for JPY"),
        ("-1.00", "EUR", "is negative"),
        ("1,50", "EUR", "is not a decimal number"),
        ("1e3", "EUR", "is not a decimal number"),
        ("", "EUR", "is not a decimal number"),
        ("NaN", "EUR", "is not a decimal number"),
        (19.99, "EUR", "got float"),
        (True, "EUR", "got bool"),
        ("1.00", "XYZ", "not an ISO 4217 currency code"),
        ("1.00", "XAU", "no minor unit"),
    ],
)
def test_refuses_what_is_not_an_amount_in_the_currency(
    amount: object, currency: str, message: str
) -> None:
    with pytest.raises(NotAnAmount, match=message):
        to_minor_units(amount, currency)  # type: ignore[arg-type]


def test_shares_add_up_to_the_amount_with_leftovers_to_the_largest_weights() -> None:
    assert allocate(10, [10, 10, 10]) == [4, 3, 3]
    assert allocate(2, [1, 3, 3]) == [0, 1, 1]
    assert allocate(0, [5, 0]) == [0, 0]
    assert allocate(7, [0, 7]) == [0, 7]


def test_an_amount_larger_than_its_weights_cannot_be_shared() -> None:
    with pytest.raises(ValueError, match="cannot share 5 over weights adding up to 4"):
        allocate(5, [1, 3])


@given(
    weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=20),
    fraction=st.fractions(min_value=0, max_value=1),
)
def test_shares_add_up_exactly_and_stay_within_a_unit_of_the_proportion(
    weights: list[int], fraction: Fraction
) -> None:
    amount = int(sum(weights) * fraction)

    shares = allocate(amount, weights)

    assert sum(shares) == amount
    for share, weight in zip(shares, weights, strict=True):
        assert 0 <= share <= weight
        assert abs(share - Fraction(amount * weight, sum(weights) or 1)) < 1


@pytest.mark.parametrize(
    ("taxed", "rate", "included", "tax"),
    [
        (1225, "0.1", False, 123),
        (1224, "0.1", False, 122),
        (5900, "0.0725", False, 428),
        (11295, "0.2", True, 1883),
        (2753, "0.2", True, 459),
        (990, "0.2", True, 165),
        (1000, "0", False, 0),
        (1, "1", True, 1),
    ],
)
def test_tax_from_a_rate_is_rounded_half_up_to_the_minor_unit(
    taxed: int, rate: str, included: bool, tax: int
) -> None:
    assert tax_amount(taxed, rate, included=included) == tax
