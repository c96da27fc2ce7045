"""A marketplace's CSV order feed → `OrderSubmitted` events, or rejected rows with the
reason. Pure: no I/O beyond the text stream it is given.

One row per order line; the rows of one order share its `external_order_id` (they need
not be next to each other). Columns, by name, in any order; an optional column may be
left out of the header or left empty. Amounts are decimals in the order's currency, such
as `19.99`, turned into minor units exactly.

Order columns (every row of an order repeats them, with the same values):

- `external_order_id`, `currency` (ISO 4217), `customer_name`; optional `customer_id`,
  `customer_email` (without one, no order e-mail is sent), `locale` (default `en`);
- delivery: `ship_name`, `ship_line1`, `ship_country` (ISO 3166 alpha-2); optional
  `ship_line2`, `ship_city`, `ship_region`, `ship_postal_code` (empty where the country
  has none: Hong Kong, say), `shipping_speed` (`standard` (default), `express`,
  `next_day`), `shipping_charge` (default 0);
- billing address, optional as a group: `bill_name`, `bill_line1`, `bill_country` (needed
  once any `bill_` column is given), `bill_line2`, `bill_city`, `bill_region`,
  `bill_postal_code`;
- `taxes_included`: `true` when prices and amounts include their tax, `false` (default)
  when tax is added on top;
- order discount: `order_discount` (amount off the goods, shared across the lines),
  `order_discount_code` (the code entered: kind `code`; without one, kind `manual`),
  `order_discount_title` (default: the code, else "Order discount");
- shipping line, sent when any of these columns is given (else the order carries
  `shipping_charge` alone): `shipping_title` (default "Shipping"); `shipping_discount`,
  `shipping_discount_code`, `shipping_discount_title` (as for the order discount; default
  title "Shipping discount"); `shipping_tax_rate`, `shipping_tax_amount`,
  `shipping_tax_title` (as for a line's tax);
- `notes`: the customer's notes;
- payment, optional as a group: `financial_status` (the marketplace's word: `paid`,
  `pending`, ...; needed once any payment column is given), `payment_gateway`,
  `payment_terms` (net terms such as "Net 30"), `payment_due_in_days` (needs
  `payment_terms`).

Line columns: `sku`, `quantity` (a positive whole number), `unit_price`; optional `title`
(the product's name); `line_discount` (amount off this line, in all),
`line_discount_code`, `line_discount_title` (as for the order discount; default title
"Line discount"); `tax_rate` (a decimal fraction from 0 to 1: `0.2` is 20 %),
`tax_amount` (needs `tax_rate`; computed from it when empty), `tax_title` (default "Tax").

Computed, in minor units:

- `line_total = unit_price * quantity`; `subtotal = Σ line_total`;
- each line's share of the order discount: `order_discount * a / Σ a`, where `a` is a
  line's `line_total - line_discount`, rounded down; the minor units left over go one
  each to the lines that lost most to rounding (the largest `a`, then the earlier line,
  among equals), so the shares add up to `order_discount` exactly;
- `discounted_total = line_total - line_discount - the line's order-discount share`;
- the shipping line: `price = shipping_charge`,
  `discounted_price = price - shipping_discount`;
- a tax given by its rate only, on the amount after discounts (`discounted_total`, or the
  shipping's `discounted_price`), rounded half up to the minor unit (`decimal`,
  ROUND_HALF_UP): `amount * rate` when tax is added on top, `amount * rate / (1 + rate)`
  (the tax inside the amount) when `taxes_included`;
- `total_discounts = Σ line_discount + order_discount + shipping_discount`;
  `total_tax = Σ the tax amounts of the lines and the shipping line`;
- `total = subtotal - total_discounts + shipping_charge + (0 when taxes_included, else
  total_tax)`.

`discounted_total`, `total_discounts` and `total_tax` are sent when any discount or tax
amount or rate column of the order has a value; an order without them is sent exactly as
before those columns existed. Every discount is listed in `discounts` as a fixed amount
(ids `line-<line_id>`, `order`, `shipping`), and each allocation names its discount.

A value a column cannot hold is rejected with the column named: an amount with too many
decimals, a tax rate that is not a decimal fraction, a discount larger than what it is
taken off, a column given without the one it needs. An order is imported whole or not at
all: when one of its rows is wrong, every row of it is rejected, each with its own reason.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from pydantic import TypeAdapter, ValidationError

from adapters.money import NotAnAmount, allocate, currency_exponent, tax_amount, to_minor_units
from adapters.publisher import FieldProblem, InvalidOrder, validate_order
from contracts.events.channel import OrderSubmitted
from contracts.events.common import ShippingSpeed
from contracts.events.pricing import DiscountKind, TaxRate, Title

REQUIRED_COLUMNS = (
    "external_order_id",
    "customer_name",
    "currency",
    "sku",
    "quantity",
    "unit_price",
    "ship_name",
    "ship_line1",
    "ship_country",
)
BILLING_COLUMNS = (
    "bill_name",
    "bill_line1",
    "bill_line2",
    "bill_city",
    "bill_region",
    "bill_postal_code",
    "bill_country",
)
SHIPPING_LINE_COLUMNS = (
    "shipping_title",
    "shipping_discount",
    "shipping_discount_code",
    "shipping_discount_title",
    "shipping_tax_rate",
    "shipping_tax_amount",
    "shipping_tax_title",
)
"""Any of them given, the shipping is sent as a shipping line."""
PAYMENT_COLUMNS = ("financial_status", "payment_gateway", "payment_terms", "payment_due_in_days")
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
    "ship_region",
    "ship_postal_code",
    "ship_country",
    "shipping_speed",
    *BILLING_COLUMNS,
    "taxes_included",
    "order_discount",
    "order_discount_code",
    "order_discount_title",
    *SHIPPING_LINE_COLUMNS,
    "notes",
    *PAYMENT_COLUMNS,
)
"""Columns that describe the whole order: the same on every row of it."""
LINE_COLUMNS = (
    "sku",
    "quantity",
    "unit_price",
    "title",
    "line_discount",
    "line_discount_code",
    "line_discount_title",
    "tax_rate",
    "tax_amount",
    "tax_title",
)
"""Columns that describe one line: they may differ from row to row."""
OPTIONAL_COLUMNS = tuple(
    column for column in (*ORDER_COLUMNS, *LINE_COLUMNS) if column not in REQUIRED_COLUMNS
)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
PRICING_COLUMNS = (
    "line_discount",
    "tax_rate",
    "tax_amount",
    "order_discount",
    "shipping_discount",
    "shipping_tax_rate",
    "shipping_tax_amount",
)
"""Any of them given on a row of an order, its lines' `discounted_total` and its
`total_discounts` and `total_tax` are sent."""
REASON_COLUMN = "reason"
DEFAULT_LOCALE = "en"
DEFAULT_SHIPPING_TITLE = "Shipping"
DEFAULT_TAX_TITLE = "Tax"
DEFAULT_DISCOUNT_TITLES = {
    "line_discount": "Line discount",
    "order_discount": "Order discount",
    "shipping_discount": "Shipping discount",
}
"""By the discount's amount column."""
ORDER_DISCOUNT_ID = "order"
SHIPPING_DISCOUNT_ID = "shipping"

_QUANTITY = re.compile(r"^[0-9]+$")
_TITLE: TypeAdapter[str] = TypeAdapter(Title)
_TAX_RATE: TypeAdapter[str] = TypeAdapter(TaxRate)
_FLAGS = {"true": True, "false": False}

# Where a contract field comes from in the feed, to name the column in a rejection
# (list indexes left out: an order has one shipping line, one gateway).
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
    "total_discounts": "line_discount, order_discount, shipping_discount (their total)",
    "total_tax": "tax_amount, shipping_tax_amount (their total)",
    "shipping_address.name": "ship_name",
    "shipping_address.line1": "ship_line1",
    "shipping_address.line2": "ship_line2",
    "shipping_address.city": "ship_city",
    "shipping_address.region": "ship_region",
    "shipping_address.postal_code": "ship_postal_code",
    "shipping_address.country": "ship_country",
    "shipping_speed": "shipping_speed",
    "billing_address.name": "bill_name",
    "billing_address.line1": "bill_line1",
    "billing_address.line2": "bill_line2",
    "billing_address.city": "bill_city",
    "billing_address.region": "bill_region",
    "billing_address.postal_code": "bill_postal_code",
    "billing_address.country": "bill_country",
    "shipping_lines.price": "shipping_charge",
    "shipping_lines.discounted_price": "shipping_charge",  # never more than the price
    "shipping_lines.tax_lines.amount": "shipping_tax_amount",
    "notes": "notes",
    "payment.financial_status": "financial_status",
    "payment.gateways": "payment_gateway",
    "payment.terms.name": "payment_terms",
    "payment.terms.due_in_days": "payment_due_in_days",
    "lines": "rows of the order",
}
# The same for the fields of a line, found on the line's own row.
_LINE_FIELD_COLUMNS = {
    "sku": "sku",
    "quantity": "quantity",
    "unit_price": "unit_price",
    "line_total": "unit_price (x quantity)",
    "discounted_total": "unit_price (x quantity)",  # never more than the line total
    "tax_lines.amount": "tax_amount",
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


@dataclass(frozen=True)
class _Discount:
    """A discount as its columns give it: an amount, and a code or a title."""

    amount: int
    code: str | None
    title: str

    @property
    def kind(self) -> DiscountKind:
        return DiscountKind.CODE if self.code else DiscountKind.MANUAL

    def listed(self, discount_id: str, target: str, currency: str) -> dict[str, Any]:
        """As one of the order's `discounts`."""
        return {
            "discount_id": discount_id,
            "kind": self.kind.value,
            "title": self.title,
            "value_type": "fixed_amount",
            "amount": _money(self.amount, currency),
            "target": target,
        } | ({"code": self.code} if self.code else {})

    def allocation(self, amount: int, discount_id: str, currency: str) -> dict[str, Any]:
        """What it took off one line or shipping line."""
        return {
            "amount": _money(amount, currency),
            "discount_id": discount_id,
            "kind": self.kind.value,
            "title": self.title,
        }


@dataclass(frozen=True)
class _Tax:
    """A tax as its columns give it: a rate, a title, and the amount when given."""

    rate: str
    title: str
    amount: int | None

    def on(self, taxed: int, *, included: bool) -> int:
        """The given amount, else the amount computed from the rate."""
        if self.amount is not None:
            return self.amount
        return tax_amount(taxed, self.rate, included=included)

    def tax_line(self, amount: int, currency: str) -> dict[str, Any]:
        return {"title": self.title, "rate": self.rate, "amount": _money(amount, currency)}


@dataclass(frozen=True)
class _Line:
    sku: str
    quantity: int
    unit_price: int
    title: str | None
    discount: _Discount | None
    tax: _Tax | None

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity

    @property
    def after_own_discount(self) -> int:
        """The line's amount after its own discount: its weight in the order discount."""
        return self.line_total - (self.discount.amount if self.discount else 0)


@dataclass(frozen=True)
class _ShippingLine:
    title: str
    discount: _Discount | None
    tax: _Tax | None


@dataclass(frozen=True)
class _OrderMoney:
    """The order's money columns, as read."""

    currency: str
    shipping_charge: int
    taxes_included: bool
    order_discount: _Discount | None
    shipping_line: _ShippingLine | None
    priced: bool
    """A discount or tax column has a value: the computed amounts after discounts and
    the totals of discounts and tax are sent."""


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

    money = _order_money(rows, order_problems)
    speed = first["shipping_speed"] or ShippingSpeed.STANDARD.value
    if speed not in {member.value for member in ShippingSpeed}:
        choices = ", ".join(member.value for member in ShippingSpeed)
        order_problems.append(f"shipping_speed: {speed!r} is not one of {choices}")
    billing_address = _billing_address(first, order_problems)
    payment = _payment(first, order_problems)
    lines = [_line(row, money.currency, problems[row.line]) for row in rows]

    if not order_problems and not any(problems.values()):
        order_problems.extend(_discounts_beyond_their_amounts(first, lines, money))
    if not order_problems and not any(problems.values()):
        document = {
            "channel": channel,
            "external_order_id": external_order_id,
            "customer": {
                "customer_id": first["customer_id"] or None,
                "email": first["customer_email"] or None,
                "name": first["customer_name"],
                "locale": first["locale"] or DEFAULT_LOCALE,
            },
            **_priced(lines, money),
            "currency": money.currency,
            "shipping_address": _address(first, "ship_"),
            "shipping_speed": speed,
            "submitted_at": submitted_at,
        }
        if billing_address:
            document["billing_address"] = billing_address
        if payment:
            document["payment"] = payment
        if first["notes"]:
            document["notes"] = first["notes"]
        try:
            return FeedOrder(tuple(rows), validate_order(document))
        except InvalidOrder as invalid:
            _place_contract_problems(invalid.problems, rows, problems, order_problems)

    return _rejected(external_order_id, rows, problems, order_problems)


def _discounts_beyond_their_amounts(
    first: FeedRow, lines: list[_Line], money: _OrderMoney
) -> list[str]:
    """The order and shipping discounts that would take off more than there is."""
    found = []
    after_own_discounts = sum(line.after_own_discount for line in lines)
    if money.order_discount and money.order_discount.amount > after_own_discounts:
        found.append(
            f"order_discount: {first['order_discount']!r} is more than the lines after their "
            f"own discounts ({_decimal_text(after_own_discounts, money.currency)})"
        )
    shipping = money.shipping_line
    if shipping and shipping.discount and shipping.discount.amount > money.shipping_charge:
        found.append(
            f"shipping_discount: {first['shipping_discount']!r} is more than "
            f"shipping_charge ({_decimal_text(money.shipping_charge, money.currency)})"
        )
    return found


def _order_money(rows: list[FeedRow], problems: list[str]) -> _OrderMoney:
    first = rows[0]
    currency = first["currency"]
    try:
        currency_exponent(currency)
    except NotAnAmount as error:
        problems.append(f"currency: {error}" if currency else "currency: empty")
        currency = ""
    shipping_charge = _amount(first, "shipping_charge", currency, problems) or 0
    shipping_line = None
    if any(first[column] for column in SHIPPING_LINE_COLUMNS):
        shipping_line = _ShippingLine(
            title=_title(first, "shipping_title", problems) or DEFAULT_SHIPPING_TITLE,
            discount=_discount(first, "shipping_discount", currency, problems),
            tax=_tax(first, "shipping_tax", currency, problems),
        )
    return _OrderMoney(
        currency=currency,
        shipping_charge=shipping_charge,
        taxes_included=_flag(first, "taxes_included", problems),
        order_discount=_discount(first, "order_discount", currency, problems),
        shipping_line=shipping_line,
        priced=any(row[column] for row in rows for column in PRICING_COLUMNS),
    )


def _line(row: FeedRow, currency: str, problems: list[str]) -> _Line:
    """The row's line; its problems added to `problems`."""
    found: list[str] = []
    line = _Line(
        sku=row["sku"],
        quantity=_quantity(row, found),
        unit_price=_unit_price(row, currency, found),
        title=_title(row, "title", found),
        discount=_discount(row, "line_discount", currency, found),
        tax=_tax(row, "tax", currency, found),
    )
    if not row["sku"]:
        found.append("sku: empty")
    if not found and currency and line.discount and line.discount.amount > line.line_total:
        found.append(
            f"line_discount: {row['line_discount']!r} is more than the line "
            f"(unit_price x quantity = {_decimal_text(line.line_total, currency)})"
        )
    problems.extend(found)
    return line


def _priced(lines: list[_Line], money: _OrderMoney) -> dict[str, Any]:
    """The lines, subtotal, shipping, discounts, taxes and total of the order."""
    currency = money.currency
    order_discount = money.order_discount.amount if money.order_discount else 0
    shares = allocate(order_discount, [line.after_own_discount for line in lines])
    documents: list[dict[str, Any]] = []
    discounts: list[dict[str, Any]] = []
    total_discounts, total_tax = order_discount, 0
    for number, (line, share) in enumerate(zip(lines, shares, strict=True), start=1):
        document, tax = _line_document(str(number), line, share, money)
        documents.append(document)
        total_tax += tax
        if line.discount and line.discount.amount:
            discounts.append(line.discount.listed(f"line-{number}", "line", currency))
            total_discounts += line.discount.amount

    priced: dict[str, Any] = {"lines": documents}
    if money.taxes_included:
        priced["taxes_included"] = True
    if money.order_discount and order_discount:
        discounts.append(money.order_discount.listed(ORDER_DISCOUNT_ID, "order", currency))
    if money.shipping_line:
        shipping, shipping_discount, shipping_tax = _shipping_line(money.shipping_line, money)
        priced["shipping_lines"] = [shipping]
        total_discounts += shipping_discount
        total_tax += shipping_tax
        if money.shipping_line.discount and shipping_discount:
            discounts.append(
                money.shipping_line.discount.listed(SHIPPING_DISCOUNT_ID, "shipping", currency)
            )
    if discounts:
        priced["discounts"] = discounts
    if money.priced:
        priced["total_discounts"] = _money(total_discounts, currency)
        priced["total_tax"] = _money(total_tax, currency)
    subtotal = sum(line.line_total for line in lines)
    added_tax = 0 if money.taxes_included else total_tax
    return priced | {
        "subtotal": _money(subtotal, currency),
        "shipping_charge": _money(money.shipping_charge, currency),
        "total": _money(subtotal - total_discounts + money.shipping_charge + added_tax, currency),
    }


def _line_document(
    line_id: str, line: _Line, order_share: int, money: _OrderMoney
) -> tuple[dict[str, Any], int]:
    """One line, less its own discount and its share of the order discount, with its tax
    (and that tax's amount)."""
    currency = money.currency
    document: dict[str, Any] = {
        "line_id": line_id,
        "sku": line.sku,
        "quantity": line.quantity,
        "unit_price": _money(line.unit_price, currency),
        "line_total": _money(line.line_total, currency),
    }
    if line.title:
        document["title"] = line.title
    allocations = []
    if line.discount and line.discount.amount:
        allocations.append(
            line.discount.allocation(line.discount.amount, f"line-{line_id}", currency)
        )
    if money.order_discount and order_share:
        allocations.append(
            money.order_discount.allocation(order_share, ORDER_DISCOUNT_ID, currency)
        )
    if allocations:
        document["discount_allocations"] = allocations
    discounted_total = line.after_own_discount - order_share
    if money.priced:
        document["discounted_total"] = _money(discounted_total, currency)
    tax = 0
    if line.tax:
        tax = line.tax.on(discounted_total, included=money.taxes_included)
        document["tax_lines"] = [line.tax.tax_line(tax, currency)]
    return document, tax


def _shipping_line(line: _ShippingLine, money: _OrderMoney) -> tuple[dict[str, Any], int, int]:
    """The shipping line, with what its discount took off and its tax."""
    currency, price = money.currency, money.shipping_charge
    discount = line.discount.amount if line.discount else 0
    document: dict[str, Any] = {
        "title": line.title,
        "price": _money(price, currency),
        "discounted_price": _money(price - discount, currency),
    }
    if line.discount and discount:
        document["discount_allocations"] = [
            line.discount.allocation(discount, SHIPPING_DISCOUNT_ID, currency)
        ]
    tax = 0
    if line.tax:
        tax = line.tax.on(price - discount, included=money.taxes_included)
        document["tax_lines"] = [line.tax.tax_line(tax, currency)]
    return document, discount, tax


def _address(row: FeedRow, prefix: str) -> dict[str, Any]:
    """The address in the columns `<prefix>name`, `<prefix>line1`, ..."""
    address = {part: row[f"{prefix}{part}"] for part in ("name", "line1", "country")}
    for part in ("line2", "city", "region", "postal_code"):
        if row[f"{prefix}{part}"]:
            address[part] = row[f"{prefix}{part}"]
    return address


def _billing_address(row: FeedRow, problems: list[str]) -> dict[str, Any] | None:
    """The billing address, when any of its columns is given."""
    if not any(row[column] for column in BILLING_COLUMNS):
        return None
    problems.extend(
        f"{column}: empty, but the billing address is given"
        for column in ("bill_name", "bill_line1", "bill_country")
        if not row[column]
    )
    return _address(row, "bill_")


def _payment(row: FeedRow, problems: list[str]) -> dict[str, Any] | None:
    """The marketplace's payment facts, when any payment column is given."""
    if not any(row[column] for column in PAYMENT_COLUMNS):
        return None
    _given_without(row, "financial_status", PAYMENT_COLUMNS[1:], problems)
    _given_without(row, "payment_terms", ("payment_due_in_days",), problems)
    payment: dict[str, Any] = {"financial_status": row["financial_status"]}
    if row["payment_gateway"]:
        payment["gateways"] = [row["payment_gateway"]]
    if row["payment_terms"]:
        terms: dict[str, Any] = {"name": row["payment_terms"]}
        due = row["payment_due_in_days"]
        if due and _QUANTITY.match(due):
            terms["due_in_days"] = int(due)
        elif due:
            problems.append(f"payment_due_in_days: {due!r} is not a whole number of days")
        payment["terms"] = terms
    return payment


def _given_without(
    row: FeedRow, needed: str, dependents: Iterable[str], problems: list[str]
) -> None:
    """A column that means nothing without another is refused rather than ignored."""
    if not row[needed]:
        problems.extend(f"{column}: given without {needed}" for column in dependents if row[column])


def _discount(
    row: FeedRow, amount_column: str, currency: str, problems: list[str]
) -> _Discount | None:
    """The discount in `<amount_column>`, `_code` and `_title`, when its amount is given."""
    code_column, title_column = f"{amount_column}_code", f"{amount_column}_title"
    _given_without(row, amount_column, (code_column, title_column), problems)
    amount = _amount(row, amount_column, currency, problems)
    code = _title(row, code_column, problems)
    title = _title(row, title_column, problems) or code or DEFAULT_DISCOUNT_TITLES[amount_column]
    return None if amount is None else _Discount(amount, code, title)


def _tax(row: FeedRow, prefix: str, currency: str, problems: list[str]) -> _Tax | None:
    """The tax in `<prefix>_rate`, `_amount` and `_title`, when its rate is given."""
    rate_column, amount_column = f"{prefix}_rate", f"{prefix}_amount"
    title_column = f"{prefix}_title"
    _given_without(row, rate_column, (amount_column, title_column), problems)
    rate = row[rate_column]
    if not rate:
        return None
    amount = _amount(row, amount_column, currency, problems)
    title = _title(row, title_column, problems) or DEFAULT_TAX_TITLE
    try:
        _TAX_RATE.validate_python(rate)
    except ValidationError:
        problems.append(
            f"{rate_column}: {rate!r} is not a decimal fraction from 0 to 1, such as 0.2"
        )
        return None
    return _Tax(rate, title, amount)


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
    return _amount(row, "unit_price", currency, problems) or 0


def _amount(row: FeedRow, column: str, currency: str, problems: list[str]) -> int | None:
    """The column's amount in minor units; None when it is empty or unreadable (then
    said in `problems`)."""
    if not row[column] or not currency:
        return None  # without the currency no amount is judged: its own problem is reported
    try:
        return to_minor_units(row[column], currency)
    except NotAnAmount as error:
        problems.append(f"{column}: {error}")
        return None


def _title(row: FeedRow, column: str, problems: list[str]) -> str | None:
    """The column's text when it is a title the contract takes; None when empty."""
    text = row[column]
    if not text:
        return None
    try:
        return _TITLE.validate_python(text)
    except ValidationError as error:
        problems.append(f"{column}: {error.errors()[0]['msg']}")
        return None


def _flag(row: FeedRow, column: str, problems: list[str]) -> bool:
    text = row[column]
    if not text:
        return False
    if text.lower() not in _FLAGS:
        problems.append(f"{column}: {text!r} is not true or false")
        return False
    return _FLAGS[text.lower()]


def _money(amount_minor: int, currency: str) -> dict[str, Any]:
    return {"amount_minor": amount_minor, "currency": currency}


def _decimal_text(amount_minor: int, currency: str) -> str:
    """1999 EUR → "19.99": an amount in the feed's own notation, for a reason."""
    return str(Decimal(amount_minor).scaleb(-currency_exponent(currency)))


def _place_contract_problems(
    contract_problems: Iterable[FieldProblem],
    rows: list[FeedRow],
    problems: dict[int, list[str]],
    order_problems: list[str],
) -> None:
    """Puts each contract violation on the row it comes from, named by feed column."""
    for problem in contract_problems:
        parts = problem.field.split(".")
        if len(parts) > 1 and parts[-1] in ("amount_minor", "currency"):
            parts = parts[:-1]  # a Money field: the column holds its amount
        if parts[0] == "lines" and len(parts) >= 3 and parts[1].isdigit():
            row = rows[int(parts[1])]
            path = ".".join(part for part in parts[2:] if not part.isdigit())
            problems[row.line].append(
                f"{_LINE_FIELD_COLUMNS.get(path, problem.field)}: {problem.problem}"
            )
            continue
        path = ".".join(part for part in parts if not part.isdigit())
        column = _CONTRACT_COLUMNS.get(path, ".".join(parts))
        order_problems.append(f"{column}: {problem.problem}")


def _rejected(
    external_order_id: str,
    rows: list[FeedRow],
    problems: dict[int, list[str]],
    order_problems: list[str],
) -> list[RejectedRow]:
    faulty_lines = [row.line for row in rows if problems[row.line]]
    rejected = []
    for row in rows:
        # One column can break two contract fields (a shipping charge is also the
        # shipping line's price): say each reason once.
        reasons = list(dict.fromkeys(order_problems + problems[row.line]))
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
