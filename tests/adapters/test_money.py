"""Channel amounts ("19.99") to integer minor units, exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.money import NotAnAmount, to_minor_units


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
