"""Amounts and addresses as the reader's language and the address's country write them."""

from __future__ import annotations

import pytest

from contracts.events.common import Address
from services.notification.formatting import address_lines, country_name, format_money

NBSP = "\u00a0"
NARROW_NBSP = "\u202f"


def test_formats_euros_the_english_and_the_french_way() -> None:
    assert format_money(4539, "EUR", "en") == "€45.39"
    assert format_money(4539, "EUR", "fr") == f"45,39{NBSP}€"
    assert format_money(123456789, "EUR", "fr-CA") == f"1{NBSP}234{NBSP}567,89{NBSP}€"
    assert format_money(5, "EUR", "fr") == f"0,05{NBSP}€"


def test_writes_yen_without_decimals() -> None:
    assert format_money(1500, "JPY", "en") == "¥1,500"
    assert format_money(1500, "JPY", "fr") == f"1{NARROW_NBSP}500{NBSP}JPY"


def test_writes_a_discount_as_a_negative_amount() -> None:
    assert format_money(-250, "EUR", "en") == "-€2.50"
    assert format_money(-250, "EUR", "fr") == f"-2,50{NBSP}€"


def test_keeps_the_digits_of_the_currency() -> None:
    assert format_money(12345, "KWD", "en") == f"KWD{NBSP}12.345"
    assert format_money(123456789, "USD", "en-US") == "$1,234,567.89"
    assert format_money(1200, "USD", "fr") == f"12,00{NBSP}$US"


def test_separates_a_currency_code_from_its_digits() -> None:
    assert format_money(1999, "CHF", "en") == f"CHF{NBSP}19.99"
    assert format_money(-1999, "CHF", "en") == f"-CHF{NBSP}19.99"
    assert format_money(1999, "CHF", "fr") == f"19,99{NBSP}CHF"
    assert format_money(1200, "CAD", "en") == "CA$12.00"


def test_never_rounds_an_amount_the_customer_paid() -> None:
    # CLDR writes forints without decimals; ISO 4217 gives them two, and so may an order.
    assert format_money(123456, "HUF", "en") == f"HUF{NBSP}1,234.56"
    assert format_money(123400, "HUF", "fr") == f"1{NARROW_NBSP}234,00{NBSP}HUF"


def test_names_the_country_in_the_reader_language() -> None:
    assert country_name("US", "fr") == "États-Unis"
    assert country_name("US", "en") == "United States"


def address(**fields: str) -> Address:
    return Address.model_validate({"name": "Ada Lovelace", "line1": "12 Main Street", **fields})


def test_lays_a_french_address_out_as_the_french_post_does() -> None:
    paris = address(line2="Bâtiment B", city="Paris", postal_code="75002", country="FR")
    assert address_lines(paris, "fr") == (
        "Ada Lovelace",
        "12 Main Street",
        "Bâtiment B",
        "75002 PARIS",
        "France",
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"region": "Kowloon", "country": "HK"}, ("KOWLOON", "Hong Kong SAR China")),
        ({"postal_code": "048616", "country": "SG"}, ("SINGAPORE 048616", "Singapore")),
        ({"region": "IL", "postal_code": "62704", "country": "US"}, ("IL 62704", "United States")),
        ({"city": "Springfield", "country": "US"}, ("SPRINGFIELD", "United States")),
        ({"city": "Beijing", "country": "CN"}, ("Beijing", "China")),
    ],
)
def test_leaves_out_what_the_address_lacks_with_its_punctuation(
    fields: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert address_lines(address(**fields), "en") == ("Ada Lovelace", "12 Main Street", *expected)


def test_keeps_a_city_the_country_layout_has_no_place_for() -> None:
    tokyo = address(city="Chiyoda-ku", region="Tokyo", postal_code="100-0005", country="JP")
    assert address_lines(tokyo, "en") == (
        "Ada Lovelace",
        "12 Main Street",
        "Chiyoda-ku, TOKYO",
        "100-0005",
        "Japan",
    )
