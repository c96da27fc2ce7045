"""Reading a Shopify order by dotted field path, every amount from one money leg, with
every problem collected instead of stopping at the first (one answer lists all that is
wrong). Pure: no I/O.

Shopify states most amounts twice: a plain decimal string in the shop currency (`price`)
and a money bag with both legs (`price_set.shop_money.amount`,
`price_set.presentment_money.amount`, the latter in the currency the buyer saw). An
amount is read from its bag's leg when the bag has it, else from the plain string, which
is usable only when the leg's currency is the shop currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from adapters.money import PLAIN_DECIMAL, NotAnAmount, currency_exponent, to_minor_units
from adapters.publisher import FieldProblem


class MoneyLeg(StrEnum):
    """Which of Shopify's two amounts to read: `shop` (the shop currency, `currency`) or
    `presentment` (the buyer's currency, `presentment_currency`)."""

    SHOP = "shop"
    PRESENTMENT = "presentment"


class Reader:
    """Fields of one payload, read by dotted path; `problems` lists what was wrong."""

    def __init__(self, leg: MoneyLeg) -> None:
        self.leg = leg
        self.problems: list[FieldProblem] = []
        self.currency: str | None = None
        """The leg's currency: every amount read is in it (None when unreadable)."""
        self.shop_currency: str | None = None
        """The currency of Shopify's plain amount strings."""
        self.single_currency = True
        """Whether the buyer paid in the shop currency (one currency on both legs)."""

    def problem(self, path: str, message: str) -> None:
        self.problems.append(FieldProblem(path, message))

    def read_currencies(self, payload: Mapping[str, Any]) -> None:
        """The shop currency, the presentment currency, and so the leg's currency."""
        self.shop_currency = self._currency(payload, "currency", required=True)
        presentment = self._currency(
            payload, "presentment_currency", required=self.leg is MoneyLeg.PRESENTMENT
        )
        self.single_currency = presentment is None or presentment == self.shop_currency
        self.currency = self.shop_currency if self.leg is MoneyLeg.SHOP else presentment

    def _currency(self, payload: Mapping[str, Any], path: str, *, required: bool) -> str | None:
        code = self.text(payload, path, required=required)
        if code is None:
            return None
        try:
            currency_exponent(code)
        except NotAnAmount as error:
            self.problem(path, str(error))
            return None
        return code

    # -- plain values ------------------------------------------------------------------

    def value(self, source: Mapping[str, Any], path: str, *, required: bool = True) -> Any:
        """The field named by the last segment of `path`; null and "" count as absent."""
        value = source.get(path.rsplit(".", 1)[-1])
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.problem(path, "missing")
            return None
        return value

    def mapping(self, source: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
        """An optional JSON object (Shopify sends null for an absent customer or address)."""
        value = self.value(source, path, required=False)
        if value is not None and not isinstance(value, Mapping):
            self.problem(path, "expected a JSON object")
            return None
        return value

    def items(self, source: Mapping[str, Any], path: str) -> list[tuple[str, Mapping[str, Any]]]:
        """The objects of an optional list, each with its path; absent is empty."""
        value = source.get(path.rsplit(".", 1)[-1])
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, "expected a list")
            return []
        found = []
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                found.append((f"{path}.{index}", item))
            else:
                self.problem(f"{path}.{index}", "expected a JSON object")
        return found

    def text(self, source: Mapping[str, Any], path: str, *, required: bool = True) -> str | None:
        value = self.value(source, path, required=required)
        if value is not None and not isinstance(value, str):
            self.problem(path, f"expected a string, got {json_type(value)}")
            return None
        return value.strip() if value is not None else None

    def identifier(
        self, source: Mapping[str, Any], path: str, *, required: bool = True
    ) -> str | None:
        """Shopify ids are JSON integers, 64-bit (past 2^53: read as Python ints, exact);
        the contract's ids are strings."""
        value = self.value(source, path, required=required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problem(path, f"expected an integer id, got {json_type(value)}")
            return None
        return str(value).strip()

    def count(self, source: Mapping[str, Any], path: str) -> int | None:
        value = self.value(source, path)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.problem(path, f"expected an integer, got {json_type(value)}")
            return None
        return value

    def decimal(self, source: Mapping[str, Any], path: str) -> Decimal | None:
        """An exact non-negative decimal from a string ("0.2") or a JSON number: a
        `Decimal` as the receiver parses them, or a float written by code, taken as its
        shortest decimal form (0.09975 → "0.09975")."""
        value = self.value(source, path)
        if value is None:
            return None
        if isinstance(value, float):
            value = repr(value)
        if isinstance(value, str) and not PLAIN_DECIMAL.match(value.strip()):
            self.problem(path, f"{value!r} is not a decimal number such as '0.2'")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            self.problem(path, f"expected a decimal number, got {json_type(value)}")
            return None
        try:
            number = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or number < 0:
            self.problem(path, f"{value!r} is not a non-negative decimal number")
            return None
        return number

    def moment(self, source: Mapping[str, Any], path: str, *, required: bool) -> str | None:
        """An ISO 8601 date and time with its UTC offset, as Shopify writes them."""
        value = self.text(source, path, required=required)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.problem(path, "not an ISO 8601 date and time")
            return None
        if moment.tzinfo is None:
            self.problem(path, "has no UTC offset")
            return None
        return moment.isoformat()

    # -- amounts ------------------------------------------------------------------------

    def in_leg(self, source: Mapping[str, Any], path: str) -> bool:
        """Whether the amount at `path` can be had in the leg's currency at all."""
        bag = source.get(f"{path.rsplit('.', 1)[-1]}_set")
        has_leg = isinstance(bag, Mapping) and bag.get(f"{self.leg}_money") is not None
        return has_leg or self.currency == self.shop_currency

    def amount(
        self,
        source: Mapping[str, Any],
        path: str,
        *,
        required: bool = True,
        plain_currency: str | None = None,
    ) -> int | None:
        """The amount at `path` in minor units of the leg's currency: from `<name>_set`'s
        leg, else from the plain string `<name>`, which is in `plain_currency` (the shop
        currency unless said). Absent: None, and a problem when `required`. Present but
        only in another currency: a problem either way (it cannot be converted), unless it
        is zero, which is zero in any currency (`total_tip_received` has no money bag)."""
        if self.currency is None:
            return None  # the currency's own problem is reported: amounts mean nothing
        name = path.rsplit(".", 1)[-1]
        leg = f"{self.leg}_money"
        bag = source.get(f"{name}_set")
        if bag is not None and not isinstance(bag, Mapping):
            self.problem(f"{path}_set", "expected a JSON object")
            return None
        if bag is not None and bag.get(leg) is not None:
            return self._leg_amount(bag[leg], f"{path}_set.{leg}")
        plain = self.value(source, path, required=False)
        if plain is None:
            if required:
                self.problem(path, "missing")
            return None
        stated_in = plain_currency or self.shop_currency or "an unreadable currency"
        if stated_in == self.currency:
            return self._minor_units(plain, path)
        if _is_zero(plain):
            return 0
        self.problem(
            f"{path}_set",
            f"no {leg}, and {path} is in {stated_in}, not the {self.leg} currency {self.currency}",
        )
        return None

    def _leg_amount(self, money: Any, path: str) -> int | None:
        if not isinstance(money, Mapping):
            self.problem(path, "expected a JSON object")
            return None
        code = money.get("currency_code")
        if isinstance(code, str) and code.strip() and code.strip() != self.currency:
            self.problem(f"{path}.currency_code", f"{code}, not the order's {self.currency}")
            return None
        amount = self.value(money, f"{path}.amount")
        return None if amount is None else self._minor_units(amount, f"{path}.amount")

    def _minor_units(self, amount: Any, path: str) -> int | None:
        assert self.currency is not None
        try:
            return to_minor_units(amount, self.currency)
        except NotAnAmount as error:
            self.problem(path, str(error))
            return None

    def money(self, amount_minor: int | None) -> dict[str, Any] | None:
        """An amount read above as the contract's Money."""
        if amount_minor is None or self.currency is None:
            return None
        return {"amount_minor": amount_minor, "currency": self.currency}


def stripped(value: Any) -> str | None:
    """A string without surrounding spaces; None for anything else and for blanks."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def clip(value: Any, limit: int) -> str | None:
    """Free text trimmed and cut to the contract's length (a product name with its
    variant, a long note): a long text is no reason to refuse an order. None when blank."""
    text = stripped(value)
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _is_zero(value: Any) -> bool:
    if isinstance(value, str) and PLAIN_DECIMAL.match(value.strip()):
        return Decimal(value.strip()) == 0
    return isinstance(value, int | Decimal) and not isinstance(value, bool) and value == 0


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
