"""The marketplace CSV feed: parsing, grouping rows into orders, and the reasons rows are
rejected. Pure: no broker."""

from __future__ import annotations

import csv
import io

import pytest

from adapters.marketplace_feed import (
    COLUMNS,
    Feed,
    UnusableFeed,
    parse_feed,
    write_rejected,
)
from contracts.base import Money
from contracts.events.common import ShippingSpeed
from tests.adapters.feeds import EXAMPLE, NOW, row


def feed_of(*rows: dict[str, str], columns: list[str] | None = None) -> Feed:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=columns or list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    stream.seek(0)
    return parse_feed(stream, channel="marketplace", submitted_at=NOW)


def reasons(feed: Feed) -> dict[int, str]:
    return {rejected.row.line: rejected.reason for rejected in feed.rejected}


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


def test_rows_of_one_order_become_one_order_with_computed_totals() -> None:
    feed = feed_of(
        row(sku="SKU-A", quantity="2", unit_price="19.99"),
        row(external_order_id="MP-2", sku="SKU-C", quantity="1", unit_price="5"),
        row(sku="SKU-B", quantity="3", unit_price="0.10"),  # not next to its order's rows
    )

    assert feed.rejected == []
    first, second = (item.order for item in feed.orders)
    assert (first.external_order_id, second.external_order_id) == ("MP-1", "MP-2")
    assert [(line.line_id, line.sku, line.quantity) for line in first.lines] == [
        ("1", "SKU-A", 2),
        ("2", "SKU-B", 3),
    ]
    assert [line.line_total for line in first.lines] == [eur(3998), eur(30)]
    assert first.subtotal == eur(4028)
    assert first.shipping_charge == eur(490)
    assert first.total == eur(4518)
    assert first.channel == "marketplace"
    assert first.partition_key() == "marketplace:MP-1"
    assert first.submitted_at == NOW
    assert [len(item.rows) for item in feed.orders] == [2, 1]


def test_optional_columns_may_be_left_out_or_empty() -> None:
    required_only = [c for c in COLUMNS if c not in ("locale", "shipping_charge", "ship_line2")]
    feed = feed_of(row(shipping_speed=""), columns=[*required_only])

    [item] = feed.orders
    assert item.order.customer.locale == "en"
    assert item.order.shipping_charge == eur(0)
    assert item.order.shipping_speed is ShippingSpeed.STANDARD
    assert item.order.shipping_address.line2 is None


def test_ship_line2_and_speed_are_carried_over() -> None:
    [item] = feed_of(row(ship_line2="Apt 4", shipping_speed="next_day")).orders

    assert item.order.shipping_address.line2 == "Apt 4"
    assert item.order.shipping_speed is ShippingSpeed.NEXT_DAY


@pytest.mark.parametrize("quantity", ["0", "-1", "1.5", "two", "", " "])
def test_a_quantity_that_is_not_a_positive_integer_is_rejected(quantity: str) -> None:
    feed = feed_of(row(quantity=quantity))

    assert feed.orders == []
    assert reasons(feed) == {2: f"quantity: {quantity.strip()!r} is not a positive whole number"}


def test_an_unknown_currency_rejects_every_row_of_the_order() -> None:
    feed = feed_of(row(currency="XYZ"), row(currency="XYZ", sku="SKU-B"))

    assert reasons(feed) == {
        2: "currency: 'XYZ' is not an ISO 4217 currency code",
        3: "currency: 'XYZ' is not an ISO 4217 currency code",
    }


def test_an_amount_with_too_many_decimals_is_rejected() -> None:
    feed = feed_of(row(unit_price="19.999"), row(sku="SKU-B", unit_price="1,50"))

    assert reasons(feed) == {
        2: "unit_price: '19.999' has more than 2 decimal places for EUR",
        3: "unit_price: '1,50' is not a decimal number such as '19.99'",
    }


def test_inconsistent_order_fields_are_rejected_with_both_values_and_the_other_line() -> None:
    feed = feed_of(
        row(),
        row(sku="SKU-B", customer_email="other@example.com"),
        row(sku="SKU-C"),
        row(external_order_id="MP-2"),
    )

    assert reasons(feed) == {
        2: "order MP-1 not imported: see line 3",
        3: "customer_email: 'other@example.com' differs from 'ada@example.com' on line 2 "
        "of the same order",
        4: "order MP-1 not imported: see line 3",
    }
    assert [item.order.external_order_id for item in feed.orders] == ["MP-2"]


def test_contract_violations_are_named_by_column() -> None:
    feed = feed_of(
        row(customer_email="not-an-email", ship_country="XX"),
        row(external_order_id="MP-2", sku="bad sku!"),
    )

    by_line = reasons(feed)
    assert by_line[2].startswith("customer_email: String should match pattern")
    assert "ship_country: Value error, 'XX' is not an ISO 3166-1 alpha-2 country code" in by_line[2]
    assert by_line[3].startswith("sku: String should match pattern")


def test_other_problems_are_each_reported() -> None:
    feed = feed_of(
        row(external_order_id=""),
        row(external_order_id="MP-3", shipping_speed="tomorrow", shipping_charge="free"),
        row(external_order_id="MP-4", sku=""),
    )

    assert reasons(feed) == {
        2: "external_order_id: empty",
        3: "shipping_charge: 'free' is not a decimal number such as '19.99'; "
        "shipping_speed: 'tomorrow' is not one of standard, express, next_day",
        4: "sku: empty",
    }


def test_rows_with_more_or_fewer_values_than_the_header_are_rejected() -> None:
    header = ",".join(COLUMNS)
    good = ",".join(row()[column] for column in COLUMNS)
    other = good.replace("MP-1", "MP-2")
    text = f"{header}\n{good},surplus\n{other.rsplit(',', 3)[0]}\n{good}\n{other}\n"

    feed = parse_feed(io.StringIO(text), channel="marketplace", submitted_at=NOW)

    assert reasons(feed) == {
        2: "row has 18 values, the header names 17 columns",
        3: "row has 14 values, the header names 17 columns",
        4: "order MP-1 not imported: see line 2",  # an order is imported whole or not at all
        5: "order MP-2 not imported: see line 3",
    }
    assert feed.orders == []


def test_a_header_without_required_columns_makes_the_feed_unusable() -> None:
    text = "external_order_id,sku,quantity\nMP-1,SKU-A,1\n"

    with pytest.raises(UnusableFeed, match="required columns missing from the header: "):
        parse_feed(io.StringIO(text), channel="marketplace", submitted_at=NOW)


@pytest.mark.parametrize("text", ["", "\n"])
def test_an_empty_file_is_unusable(text: str) -> None:
    with pytest.raises(UnusableFeed, match="empty"):
        parse_feed(io.StringIO(text), channel="marketplace", submitted_at=NOW)


def test_unknown_columns_are_kept_in_the_rejected_file_and_listed_as_ignored() -> None:
    feed = feed_of(
        row(quantity="0") | {"marketplace_ref": "R-9"}, columns=[*COLUMNS, "marketplace_ref"]
    )
    out = io.StringIO()

    write_rejected(out, feed.columns, feed.rejected)

    assert feed.ignored_columns == ["marketplace_ref"]
    [written] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert written["marketplace_ref"] == "R-9"
    assert written["quantity"] == "0"
    assert written["reason"] == "quantity: '0' is not a positive whole number"


def test_the_committed_example_feed_has_four_good_orders_and_one_bad() -> None:
    with EXAMPLE.open(newline="", encoding="utf-8") as stream:
        feed = parse_feed(stream, channel="marketplace", submitted_at=NOW)

    assert [item.order.external_order_id for item in feed.orders] == [
        "MP-10001",
        "MP-10002",
        "MP-10003",
        "MP-10004",
    ]
    assert reasons(feed) == {
        8: "quantity: 'two' is not a positive whole number",
        9: "order MP-10005 not imported: see line 8",
    }
