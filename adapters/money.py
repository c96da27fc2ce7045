"""Money as channels compute it, in the integer minor units of the contracts: decimal
amounts as channels write them ("19.99" → 1999), an amount spread across lines, and the
tax at a rate. Exact throughout: integers, `decimal.Decimal` and the currency's ISO 4217
exponent, never a float."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

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


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` shared in proportion to `weights` (the largest-remainder method): each
    share rounded down, then the minor units left over given one each to the shares that
    lost most to rounding (the larger weight, then the earlier, among equals). The shares
    add up to `amount` exactly, each within one unit of its exact proportion, and none
    exceeds its weight, as `amount` may not exceed Σ weights."""
    whole = sum(weights)
    if amount > whole:
        raise ValueError(f"cannot share {amount} over weights adding up to {whole}")
    if amount == 0:
        return [0] * len(weights)
    shares = [amount * weight // whole for weight in weights]
    # Fewer units are left over than there are shares that lost some to rounding down.
    most_lost_first = sorted(
        range(len(weights)),
        key=lambda index: (-(amount * weights[index] % whole), -weights[index], index),
    )
    for index in most_lost_first[: amount - sum(shares)]:
        shares[index] += 1
    return shares


def tax_amount(taxed: int, rate: str, *, included: bool) -> int:
    """The tax at `rate` (a decimal fraction as text) on `taxed` minor units, rounded half
    up to the minor unit: `taxed * rate` when the tax is added on top, and when `taxed`
    includes it, the tax inside: `taxed * rate / (1 + rate)`."""
    fraction = Decimal(rate)
    with localcontext() as context:
        # Products are exact at this precision; a quotient is kept to far more digits
        # than its distance from a half can be small, so none is rounded as a false half.
        context.prec = 60
        tax = Decimal(taxed) * fraction
        if included:
            tax /= 1 + fraction
        return int(tax.to_integral_value(rounding=ROUND_HALF_UP))
