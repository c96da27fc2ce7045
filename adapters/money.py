"""Decimal amounts as channels write them ("19.99") to the integer minor units of the
contracts (1999), exactly: `decimal.Decimal` and the currency's ISO 4217 exponent, never
a float."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import iso4217

PLAIN_DECIMAL = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")
"""Digits with an optional decimal point: no exponent, no thousands separator, no
decimal comma ("1,5" is ambiguous across locales, so it is refused rather than guessed)."""


class NotAnAmount(ValueError):
    """The text is not an amount of money in the currency; the message says why."""


def currency_exponent(code: str) -> int:
    """Digits after the decimal point in the currency (EUR 2, JPY 0, BHD 3)."""
    try:
        exponent = iso4217.Currency(code).exponent
    except ValueError:
        raise NotAnAmount(f"{code!r} is not an ISO 4217 currency code") from None
    if exponent is None:  # gold, SDR, test codes: no minor unit, not money we take
        raise NotAnAmount(f"{code!r} has no minor unit: not a currency orders are paid in")
    return int(exponent)


def to_minor_units(amount: str | int | Decimal, currency: str) -> int:
    """`"19.99", "EUR"` → 1999. Refuses negatives, more decimals than the currency has,
    and anything that is not a plain decimal number (floats included: already inexact)."""
    exponent = currency_exponent(currency)
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise NotAnAmount(f"expected a decimal string such as '19.99', got {type(amount).__name__}")
    if isinstance(amount, str) and not PLAIN_DECIMAL.match(amount.strip()):
        raise NotAnAmount(f"{amount!r} is not a decimal number such as '19.99'")
    try:
        value = Decimal(amount.strip() if isinstance(amount, str) else amount)
    except InvalidOperation:
        raise NotAnAmount(f"{amount!r} is not a decimal number") from None
    if not value.is_finite():
        raise NotAnAmount(f"{amount!r} is not a decimal number")
    if value < 0:
        raise NotAnAmount(f"{amount!r} is negative")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise NotAnAmount(f"{amount!r} has more than {exponent} decimal places for {currency}")
    return int(minor)
