"""Text a service stores: PostgreSQL cannot keep U+0000 in a text column, so an API field
refuses it as the field's own validation error (a 422 naming the field), never a 500."""

from __future__ import annotations


def without_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL (U+0000) characters")
    return text
