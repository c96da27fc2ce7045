"""Turning the services' JSON into what people read: money, times, tables. Every value
from the system is shown as plain text (never as rich markup), so a customer named
`[red]x` or an error message full of brackets prints as it is."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from iso4217 import Currency
from rich.table import Table
from rich.text import Text

EMPTY = "—"


def money(value: Any) -> str:
    """`{"amount_minor": 5590, "currency": "EUR"}` → `55.90 EUR` (the currency's own
    number of decimals: `JPY` has none)."""
    if not isinstance(value, Mapping):
        return EMPTY
    amount = value.get("amount_minor")
    currency = value.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return EMPTY
    try:
        exponent = Currency(currency).exponent or 0
    except ValueError:
        exponent = 2
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    return (
        f"{sign}{units}.{minor:0{exponent}d} {currency}"
        if exponent
        else f"{sign}{units} {currency}"
    )


def when(value: Any) -> str:
    """An ISO 8601 time as `2025-05-01 14:03:07Z` (seconds are enough for operators)."""
    if not isinstance(value, str) or not value:
        return EMPTY
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    offset = moment.utcoffset()
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    if offset is None:
        return shown
    return f"{shown}Z" if not offset else shown + moment.strftime("%z")


def text(value: Any) -> Text:
    """A table cell that is never parsed as markup."""
    if value is None or value == "":
        return Text(EMPTY, style="dim")
    return Text(str(value))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    grid = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(cell if isinstance(cell, Text) else text(cell) for cell in row))
    return grid


def quantities(lines: Any) -> str:
    """`[{"sku": "A", "quantity": 2}, ...]` → `2 x A, ...`."""
    if not isinstance(lines, list) or not lines:
        return EMPTY
    return ", ".join(f"{line.get('quantity')} x {line.get('sku')}" for line in lines)


def address(value: Any) -> str:
    if not isinstance(value, Mapping):
        return EMPTY
    parts = [
        value.get("name"),
        value.get("line1"),
        value.get("line2"),
        " ".join(str(part) for part in (value.get("postal_code"), value.get("city")) if part),
        value.get("region"),
        value.get("country"),
    ]
    return ", ".join(str(part) for part in parts if part)


def page_of(body: Any) -> tuple[list[Any], Any]:
    """The items of a list answer and the cursor of the next page: a bare JSON list (no
    further page) or `{"items": [...], "next_cursor": ...}`."""
    if isinstance(body, list):
        return body, None
    if isinstance(body, Mapping) and isinstance(body.get("items"), list):
        return list(body["items"]), body.get("next_cursor")
    raise ValueError("expected a list or an object with `items`")


TIME_KEYS = ("at", "occurred_at", "time", "recorded_at", "timestamp")
SOURCE_KEYS = ("service", "source", "producer", "topic")
KIND_KEYS = ("type", "event_type", "kind", "event")
SUMMARY_KEYS = ("summary", "description", "detail", "details", "message")


def _first(entry: Mapping[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in entry:
            return key, entry[key]
    return None, None


def timeline_rows(timeline: Any) -> list[tuple[str, str, str, str]]:
    """Rows (when, source, what, details) of an order's cross-service timeline, whatever
    the exact field names of its entries: the known time, source and type fields where
    present, and the entry's summary, or without one its other fields as `name=value`."""
    if not isinstance(timeline, list):
        return []
    rows: list[tuple[str, str, str, str]] = []
    for entry in timeline:
        if not isinstance(entry, Mapping):
            rows.append((EMPTY, EMPTY, str(entry), ""))
            continue
        time_key, moment = _first(entry, TIME_KEYS)
        source_key, source = _first(entry, SOURCE_KEYS)
        kind_key, kind = _first(entry, KIND_KEYS)
        summary_key, summary = _first(entry, SUMMARY_KEYS)
        used = {time_key, source_key, kind_key, summary_key}
        rest = [
            f"{key}={_compact(value)}"
            for key, value in entry.items()
            if key not in used and value not in (None, "", [], {})
        ]
        # A summary says it in words; only without one are the raw fields worth the room.
        details = _compact(summary) if summary else "; ".join(rest)
        rows.append((when(moment), _compact(source) or EMPTY, _compact(kind) or EMPTY, details))
    return rows


def _compact(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_compact(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_compact(item) for item in value)
    return str(value)
