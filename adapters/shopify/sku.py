"""The SKU of a Shopify line that has none: the SKU is optional in Shopify (many shops
leave it empty), while every order line here needs one to reserve stock by.

The fallback is a template over the line's ids, `shopify-variant:{variant_id}` by
default: register the variants under those SKUs in the catalogue and inventory.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from contracts.base import Sku

PLACEHOLDERS = ("variant_id", "product_id", "line_item_id")
"""What a template may use: `line_items[].variant_id`, `.product_id` and `.id`."""

_LONGEST_ID = "9" * 20  # Shopify ids are 64-bit integers: at most 20 digits
_SKU = TypeAdapter(Sku)


@dataclass(frozen=True)
class SkuFallback:
    """A checked template, e.g. `shopify-variant:{variant_id}`. Raises ValueError when
    the template uses anything but `PLACEHOLDERS` (or none of them: every SKU-less line
    would share one SKU), or cannot make a valid SKU for every id."""

    template: str
    placeholders: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        try:
            parts = list(string.Formatter().parse(self.template))
        except ValueError as error:
            raise ValueError(f"SKU template {self.template!r}: {error}") from None
        used: list[str] = []
        for _text, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in PLACEHOLDERS or spec or conversion:
                raise ValueError(
                    f"SKU template {self.template!r}: {{{name}}} is not one of "
                    + ", ".join(f"{{{placeholder}}}" for placeholder in PLACEHOLDERS)
                )
            used.append(name)
        if not used:
            raise ValueError(
                f"SKU template {self.template!r} uses no placeholder: every line without a "
                "SKU would get the same one"
            )
        object.__setattr__(self, "placeholders", tuple(dict.fromkeys(used)))
        try:
            _SKU.validate_python(self.render(dict.fromkeys(used, _LONGEST_ID)))
        except ValidationError:
            raise ValueError(
                f"SKU template {self.template!r} does not make a valid SKU (letters, digits, "
                "'.', '_', ':' and '-', starting with a letter or digit, at most 64 "
                "characters with 20-digit ids)"
            ) from None

    def render(self, ids: Mapping[str, str]) -> str:
        """The SKU for a line with these ids (each of `placeholders` must be there)."""
        return self.template.format_map(ids)


DEFAULT_SKU_FALLBACK = SkuFallback("shopify-variant:{variant_id}")
