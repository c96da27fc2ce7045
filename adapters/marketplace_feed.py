"""A marketplace's CSV order feed → `OrderSubmitted` events, or rejected rows with the
reason. Pure: no I/O beyond the text stream it is given.

One row per order line; the rows of one order share its `external_order_id` (they need
not be next to each other). Columns, by name, in any order:

- order: `external_order_id`, `customer_id`, `customer_email`, `customer_name`,
  `locale` (optional, default `en`), `currency` (ISO 4217), `shipping_charge` (optional
  decimal, default 0), `ship_name`, `ship_line1`, `ship_line2` (optional), `ship_city`,
  `ship_postal_code`, `ship_country` (ISO 3166 alpha-2), `shipping_speed` (optional:
  `standard` (default), `express`, `next_day`). Every row of an order repeats them, with
  the same values;
- line: `sku`, `quantity` (a positive whole number), `unit_price` (a decimal such as
  `19.99`, in the order's currency).

Line totals (`unit_price` x `quantity`), the subtotal and the total (subtotal + shipping)
are computed. An order is imported whole or not at all: when one of its rows is wrong,
every row of it is rejected, each with its own reason.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from adapters.money import NotAnAmount, currency_exponent, to_minor_units
from adapters.publisher import FieldProblem, InvalidOrder, validate_order
from contracts.events.channel import OrderSubmitted
from contracts.events.common import ShippingSpeed

REQUIRED_COLUMNS = (
    "external_order_id",
    "customer_id",
    "customer_email",
    "customer_name",
    "currency",
    "sku",
    "quantity",
    "unit_price",
    "ship_name",
    "ship_line1",
    "ship_city",
    "ship_postal_code",
    "ship_country",
)
OPTIONAL_COLUMNS = ("locale", "shipping_charge", "ship_line2", "shipping_speed")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
ORDER_COLUMNS = (
    "customer_id",
    "customer_email",
    "customer_name",
    "locale",
    "currency",
    "shipping_charge",
    "ship_name",
    "ship_line1",
    "ship_line2",
    "ship_city",
    "ship_postal_code",
    "ship_country",
    "shipping_speed",
)
"""Columns that describe the whole order: the same on every row of it."""
REASON_COLUMN = "reason"
DEFAULT_LOCALE = "en"

_QUANTITY = re.compile(r"^[0-9]+$")

# Where a contract field comes from in the feed, to name the column in a rejection.
_CONTRACT_COLUMNS = {
    "external_order_id": "external_order_id",
    "customer.customer_id": "customer_id",
    "customer.email": "customer_email",
    "customer.name": "customer_name",
    "customer.locale": "locale",
    "currency": "currency",
    "shipping_charge": "shipping_charge",
    "subtotal": "unit_price (the subtotal)",
    "total": "unit_price (the total)",
    "shipping_address.name": "ship_name",
    "shipping_address.line1": "ship_line1",
    "shipping_address.line2": "ship_line2",
    "shipping_address.city": "ship_city",
    "shipping_address.postal_code": "ship_postal_code",
    "shipping_address.country": "ship_country",
    "shipping_speed": "shipping_speed",
    "lines": "rows of the order",
}
_LINE_COLUMNS = {
    "sku": "sku",
    "quantity": "quantity",
    "unit_price": "unit_price",
    "line_total": "unit_price (x quantity)",
}


class UnusableFeed(ValueError):
    """The file cannot be read as a feed at all (no header, required columns missing)."""


@dataclass(frozen=True)
class FeedRow:
    line: int
    """Line number in the file (the header is line 1)."""
    values: Mapping[str, str]
    """The row as read, by column name (extra columns included)."""

    @property
    def external_order_id(self) -> str:
        return self.values.get("external_order_id", "").strip()

    def __getitem__(self, column: str) -> str:
        return (self.values.get(column) or "").strip()


@dataclass(frozen=True)
class RejectedRow:
    row: FeedRow
    reason: str


@dataclass(frozen=True)
class FeedOrder:
    rows: tuple[FeedRow, ...]
    order: OrderSubmitted


@dataclass
class Feed:
    columns: list[str]
    orders: list[FeedOrder] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows_accepted(self) -> int:
        return sum(len(order.rows) for order in self.orders)

    @property
    def orders_rejected(self) -> int:
        return len({rejected.row.external_order_id for rejected in self.rejected})


def parse_feed(stream: TextIO, *, channel: str, submitted_at: datetime) -> Feed:
    """Every order of the feed, validated against the contract; or its rows rejected.

    `UnusableFeed` when there is no header or required columns are missing."""
    reader = csv.DictReader(stream)
    columns = _header(reader.fieldnames)
    feed = Feed(
        columns=columns,
        ignored_columns=[column for column in columns if column not in COLUMNS],
    )
    groups: dict[str, list[FeedRow]] = {}
    misshapen: dict[str, list[int]] = {}
    for record in reader:
        row = FeedRow(reader.line_num, _cleaned(record))
        shape = _shape_problem(record, len(columns))
        if shape is not None:
            feed.rejected.append(RejectedRow(row, shape))
            if row.external_order_id:  # its order is imported whole or not at all
                misshapen.setdefault(row.external_order_id, []).append(row.line)
        elif not row.external_order_id:
            feed.rejected.append(RejectedRow(row, "external_order_id: empty"))
        else:
            groups.setdefault(row.external_order_id, []).append(row)
    for external_order_id, rows in groups.items():
        if external_order_id in misshapen:
            lines = ", ".join(str(line) for line in misshapen[external_order_id])
            reason = f"order {external_order_id} not imported: see line {lines}"
            feed.rejected.extend(RejectedRow(row, reason) for row in rows)
            continue
        outcome = build_order(external_order_id, rows, channel=channel, submitted_at=submitted_at)
        if isinstance(outcome, FeedOrder):
            feed.orders.append(outcome)
        else:
            feed.rejected.extend(outcome)
    feed.rejected.sort(key=lambda rejected: rejected.row.line)
    return feed


def _header(fieldnames: Iterable[str] | None) -> list[str]:
    if not fieldnames:
        raise UnusableFeed("the file is empty: expected a header row naming the columns")
    columns = [name.strip() for name in fieldnames]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise UnusableFeed(f"columns named more than once: {', '.join(duplicated)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise UnusableFeed(
            f"required columns missing from the header: {', '.join(missing)} "
            f"(the header has: {', '.join(columns)})"
        )
    return columns


def _cleaned(record: Mapping[str | None, Any]) -> dict[str, str]:
    # DictReader files surplus values under None and pads short rows with None.
    return {
        name.strip(): value if isinstance(value, str) else ""
        for name, value in record.items()
        if name is not None
    }


def _shape_problem(record: Mapping[str | None, Any], width: int) -> str | None:
    surplus = record.get(None)
    if surplus:
        return f"row has {width + len(surplus)} values, the header names {width} columns"
    if any(value is None for value in record.values()):
        filled = sum(1 for value in record.values() if value is not None)
        return f"row has {filled} values, the header names {width} columns"
    return None


def build_order(
    external_order_id: str, rows: list[FeedRow], *, channel: str, submitted_at: datetime
) -> FeedOrder | list[RejectedRow]:
    """The order made of its rows, or every row rejected with its reason."""
    problems: dict[int, list[str]] = {row.line: [] for row in rows}
    order_problems: list[str] = []
    first = rows[0]

    for column in ORDER_COLUMNS:
        for row in rows[1:]:
            if row[column] != first[column]:
                problems[row.line].append(
                    f"{column}: {row[column]!r} differs from {first[column]!r} on line "
                    f"{first.line} of the same order"
                )

    currency = first["currency"]
    try:
        currency_exponent(currency)
    except NotAnAmount as error:
        order_problems.append(f"currency: {error}" if currency else "currency: empty")
        currency = ""

    shipping_minor = 0
    if currency and first["shipping_charge"]:
        try:
            shipping_minor = to_minor_units(first["shipping_charge"], currency)
        except NotAnAmount as error:
            order_problems.append(f"shipping_charge: {error}")

    speed = first["shipping_speed"] or ShippingSpeed.STANDARD.value
    if speed not in {member.value for member in ShippingSpeed}:
        choices = ", ".join(member.value for member in ShippingSpeed)
        order_problems.append(f"shipping_speed: {speed!r} is not one of {choices}")

    lines: list[dict[str, Any]] = []
    subtotal = 0
    for number, row in enumerate(rows, start=1):
        quantity = _quantity(row, problems[row.line])
        unit_minor = _unit_price(row, currency, problems[row.line])
        if not row["sku"]:
            problems[row.line].append("sku: empty")
        subtotal += unit_minor * quantity
        lines.append(
            {
                "line_id": str(number),
                "sku": row["sku"],
                "quantity": quantity,
                "unit_price": {"amount_minor": unit_minor, "currency": currency},
                "line_total": {"amount_minor": unit_minor * quantity, "currency": currency},
            }
        )

    if not order_problems and not any(problems.values()):
        document = {
            "channel": channel,
            "external_order_id": external_order_id,
            "customer": {
                "customer_id": first["customer_id"],
                "email": first["customer_email"],
                "name": first["customer_name"],
                "locale": first["locale"] or DEFAULT_LOCALE,
            },
            "lines": lines,
            "currency": currency,
            "subtotal": {"amount_minor": subtotal, "currency": currency},
            "shipping_charge": {"amount_minor": shipping_minor, "currency": currency},
            "total": {"amount_minor": subtotal + shipping_minor, "currency": currency},
            "shipping_address": {
                "name": first["ship_name"],
                "line1": first["ship_line1"],
                "city": first["ship_city"],
                "postal_code": first["ship_postal_code"],
                "country": first["ship_country"],
            }
            | ({"line2": first["ship_line2"]} if first["ship_line2"] else {}),
            "shipping_speed": speed,
            "submitted_at": submitted_at,
        }
        try:
            return FeedOrder(tuple(rows), validate_order(document))
        except InvalidOrder as invalid:
            _place_contract_problems(invalid.problems, rows, problems, order_problems)

    return _rejected(external_order_id, rows, problems, order_problems)


def _quantity(row: FeedRow, problems: list[str]) -> int:
    text = row["quantity"]
    if not _QUANTITY.match(text) or int(text) == 0:
        problems.append(f"quantity: {text!r} is not a positive whole number")
        return 0
    return int(text)


def _unit_price(row: FeedRow, currency: str, problems: list[str]) -> int:
    if not row["unit_price"]:
        problems.append("unit_price: empty")
        return 0
    if not currency:
        return 0  # the currency's own problem is reported; no amount is judged without it
    try:
        return to_minor_units(row["unit_price"], currency)
    except NotAnAmount as error:
        problems.append(f"unit_price: {error}")
        return 0


def _place_contract_problems(
    contract_problems: Iterable[FieldProblem],
    rows: list[FeedRow],
    problems: dict[int, list[str]],
    order_problems: list[str],
) -> None:
    """Puts each contract violation on the row it comes from, named by feed column."""
    for problem in contract_problems:
        parts = problem.field.split(".")
        if parts[0] == "lines" and len(parts) >= 3 and parts[1].isdigit():
            row = rows[int(parts[1])]
            column = _LINE_COLUMNS.get(parts[2], problem.field)
            problems[row.line].append(f"{column}: {problem.problem}")
            continue
        if len(parts) > 1 and parts[-1] in ("amount_minor", "currency"):
            parts = parts[:-1]  # a Money field: the column holds its amount
        path = ".".join(parts)
        order_problems.append(f"{_CONTRACT_COLUMNS.get(path, path)}: {problem.problem}")


def _rejected(
    external_order_id: str,
    rows: list[FeedRow],
    problems: dict[int, list[str]],
    order_problems: list[str],
) -> list[RejectedRow]:
    faulty_lines = [row.line for row in rows if problems[row.line]]
    rejected = []
    for row in rows:
        reasons = order_problems + problems[row.line]
        if not reasons:
            lines = ", ".join(str(line) for line in faulty_lines)
            reasons = [f"order {external_order_id} not imported: see line {lines}"]
        rejected.append(RejectedRow(row, "; ".join(reasons)))
    return rejected


def write_rejected(stream: TextIO, columns: list[str], rejected: Iterable[RejectedRow]) -> None:
    """The rejected rows as they were read, plus a `reason` column."""
    writer = csv.DictWriter(stream, fieldnames=[*columns, REASON_COLUMN], extrasaction="ignore")
    writer.writeheader()
    for item in rejected:
        writer.writerow({**item.row.values, REASON_COLUMN: item.reason})
