"""The marketplace CSV feed: parsing, grouping rows into orders, and the reasons rows are
rejected. Pure: no broker."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import marketplace_feed
from adapters.marketplace_feed import (
    COLUMNS,
    REQUIRED_COLUMNS,
    Feed,
    UnusableFeed,
    parse_feed,
    write_rejected,
)
from contracts.base import Money
from contracts.events.channel import OrderSubmitted
from contracts.events.common import ShippingSpeed
from contracts.events.pricing import DiscountKind, DiscountValueType
from tests.adapters.feeds import EXAMPLE, NOW, TAXED_EXAMPLE, assert_amounts_add_up, row


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


def test_optional_columns_may_be_left_out() -> None:
    feed = feed_of(row(), columns=list(REQUIRED_COLUMNS))

    [item] = feed.orders
    order = item.order
    assert order.customer.locale == "en"
    assert (order.customer.customer_id, order.customer.email) == (None, None)
    assert order.shipping_charge == eur(0)
    assert order.total == eur(3998)
    assert order.shipping_speed is ShippingSpeed.STANDARD
    assert order.shipping_address is not None
    assert order.shipping_address.line2 is None
    assert (order.shipping_address.city, order.shipping_address.postal_code) == (None, None)


def test_optional_columns_may_be_left_empty() -> None:
    feed = feed_of(
        row(
            shipping_speed="",
            locale="",
            shipping_charge="",
            customer_id="",
            customer_email="",
            ship_city="",
            ship_postal_code="",
        )
    )

    [item] = feed.orders
    assert item.order.customer.locale == "en"
    assert item.order.customer.email is None
    assert item.order.shipping_charge == eur(0)
    assert item.order.shipping_speed is ShippingSpeed.STANDARD


def test_ship_line2_and_speed_are_carried_over() -> None:
    [item] = feed_of(row(ship_line2="Apt 4", shipping_speed="next_day")).orders

    assert item.order.shipping_address is not None
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
    header = ",".join(row())
    good = ",".join(row().values())
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


def test_the_old_example_feed_is_published_as_before_the_money_columns() -> None:
    with EXAMPLE.open(newline="", encoding="utf-8") as stream:
        feed = parse_feed(stream, channel="marketplace", submitted_at=NOW)

    first = feed.orders[0].order
    assert first.model_dump(mode="json", exclude={"event_id", "occurred_at"}) == {
        "discounts": [],
        "shipping_lines": [],
        "charges": [],
        "taxes_included": False,
        "total_discounts": None,
        "total_tax": None,
        "billing_address": None,
        "payment": None,
        "channel": "marketplace",
        "external_order_id": "MP-10001",
        "customer": {
            "customer_id": "cus-501",
            "email": "lea.dubois@example.com",
            "name": "Léa Dubois",
            "locale": "fr",
        },
        "lines": [
            {
                "line_id": "1",
                "sku": "LAMP-ARC",
                "title": None,
                "quantity": 1,
                "unit_price": {"amount_minor": 12900, "currency": "EUR"},
                "line_total": {"amount_minor": 12900, "currency": "EUR"},
                "discount_allocations": [],
                "discounted_total": None,
                "tax_lines": [],
            },
            {
                "line_id": "2",
                "sku": "MUG-STONE",
                "title": None,
                "quantity": 2,
                "unit_price": {"amount_minor": 1450, "currency": "EUR"},
                "line_total": {"amount_minor": 2900, "currency": "EUR"},
                "discount_allocations": [],
                "discounted_total": None,
                "tax_lines": [],
            },
        ],
        "currency": "EUR",
        "subtotal": {"amount_minor": 15800, "currency": "EUR"},
        "shipping_charge": {"amount_minor": 990, "currency": "EUR"},
        "total": {"amount_minor": 16790, "currency": "EUR"},
        "shipping_address": {
            "name": "Léa Dubois",
            "line1": "8 rue des Lilas",
            "line2": None,
            "city": "Paris",
            "postal_code": "75011",
            "region": None,
            "country": "FR",
            "phone": None,
        },
        "shipping_speed": "standard",
        "submitted_at": "2024-05-14T12:00:00Z",
        "placed_by": None,
        "notes": None,
    }
    # Only the fields the feed has always sent are set, on every order and line.
    first_version = {
        "channel",
        "external_order_id",
        "customer",
        "lines",
        "currency",
        "subtotal",
        "shipping_charge",
        "total",
        "shipping_address",
        "shipping_speed",
        "submitted_at",
    }
    for item in feed.orders:
        assert item.order.model_fields_set == first_version
        for line in item.order.lines:
            assert line.model_fields_set == {
                "line_id",
                "sku",
                "quantity",
                "unit_price",
                "line_total",
            }


def test_a_title_is_carried_to_its_line() -> None:
    [item] = feed_of(row(title="Oak chair"), row(sku="SKU-B")).orders

    assert [line.title for line in item.order.lines] == ["Oak chair", None]


def test_a_line_discount_is_taken_off_its_line_as_a_manual_discount() -> None:
    [item] = feed_of(
        row(sku="SKU-A", quantity="2", unit_price="19.99", line_discount="5.00"),
        row(sku="SKU-B", quantity="1", unit_price="10.00"),
    ).orders
    order = item.order

    first, second = order.lines
    [allocation] = first.discount_allocations
    assert (allocation.amount, allocation.discount_id) == (eur(500), "line-1")
    assert (allocation.kind, allocation.title) == (DiscountKind.MANUAL, "Line discount")
    assert first.discounted_total == eur(3498)
    assert (second.discount_allocations, second.discounted_total) == ((), eur(1000))
    [discount] = order.discounts
    assert (discount.discount_id, discount.target, discount.amount) == ("line-1", "line", eur(500))
    assert discount.value_type is DiscountValueType.FIXED_AMOUNT
    assert order.total_discounts == eur(500)
    assert order.total_tax == eur(0)
    assert order.total == eur(4998 - 500 + 490)
    assert_amounts_add_up(order)


def test_a_line_discount_with_a_code_is_a_code_discount_titled_by_its_code() -> None:
    feed = feed_of(
        row(line_discount="1.00", line_discount_code="BULK2"),
        row(external_order_id="MP-2", line_discount="1.00", line_discount_title="Damaged box"),
    )

    coded, titled = (item.order for item in feed.orders)
    assert coded.discounts[0].kind is DiscountKind.CODE
    assert (coded.discounts[0].code, coded.discounts[0].title) == ("BULK2", "BULK2")
    assert coded.lines[0].discount_allocations[0].title == "BULK2"
    assert titled.discounts[0].kind is DiscountKind.MANUAL
    assert (titled.discounts[0].code, titled.discounts[0].title) == (None, "Damaged box")


def test_an_order_discount_is_shared_in_proportion_leftover_cents_to_the_largest_remainders() -> (
    None
):
    [item] = feed_of(
        row(sku="SKU-A", quantity="1", unit_price="10.00", order_discount="0.04"),
        row(sku="SKU-B", quantity="1", unit_price="5.00", order_discount="0.04"),
        row(sku="SKU-C", quantity="1", unit_price="10.00", order_discount="0.04"),
    ).orders
    order = item.order

    # 4 x 10/25 = 1.6, 4 x 5/25 = 0.8, 4 x 10/25 = 1.6: rounded down 1, 0, 1; the two
    # cents left go to the lines that lost most to rounding: 0.8, then the earlier 0.6.
    shares = [[a.amount for a in line.discount_allocations] for line in order.lines]
    assert shares == [[eur(2)], [eur(1)], [eur(1)]]
    [discount] = order.discounts
    assert (discount.discount_id, discount.target, discount.amount) == ("order", "order", eur(4))
    assert (discount.kind, discount.title) == (DiscountKind.MANUAL, "Order discount")
    assert [line.discounted_total for line in order.lines] == [eur(998), eur(499), eur(999)]
    assert order.total == eur(2500 - 4 + 490)
    assert_amounts_add_up(order)


def test_an_order_discount_is_shared_over_the_lines_after_their_own_discounts() -> None:
    changes = {"order_discount": "10.00", "order_discount_code": "TEN"}
    [item] = feed_of(
        row(unit_price="30.00", quantity="1", line_discount="20.00", **changes),
        row(sku="SKU-B", unit_price="30.00", quantity="1", **changes),
    ).orders
    order = item.order

    # Weights 10.00 and 30.00: a quarter and three quarters of 10.00.
    first, second = order.lines
    assert [a.amount for a in first.discount_allocations] == [eur(2000), eur(250)]
    assert [a.discount_id for a in first.discount_allocations] == ["line-1", "order"]
    assert [a.amount for a in second.discount_allocations] == [eur(750)]
    assert [(a.kind, a.title) for a in second.discount_allocations] == [(DiscountKind.CODE, "TEN")]
    assert order.total_discounts == eur(3000)
    assert_amounts_add_up(order)


def test_a_tax_rate_alone_adds_its_tax_rounded_half_up_on_top_of_the_price() -> None:
    [item] = feed_of(row(quantity="1", unit_price="12.25", tax_rate="0.1", tax_title="GST")).orders
    order = item.order

    [tax] = order.lines[0].tax_lines
    assert (tax.title, tax.rate, tax.amount) == ("GST", "0.1", eur(123))  # 122.5 rounds up
    assert order.taxes_included is False
    assert order.total_tax == eur(123)
    assert order.total == eur(1225 + 490 + 123)
    assert_amounts_add_up(order)


def test_a_tax_included_in_the_price_is_extracted_from_the_discounted_line() -> None:
    [item] = feed_of(
        row(
            quantity="1",
            unit_price="129.00",
            line_discount="16.05",
            tax_rate="0.2",
            taxes_included="TRUE",
            shipping_charge="0",
        )
    ).orders
    order = item.order

    # 112.95 holds 112.95 x 0.2 / 1.2 = 18.825 of tax: 18.83, and the total does not grow.
    [tax] = order.lines[0].tax_lines
    assert (tax.title, tax.amount) == ("Tax", eur(1883))
    assert order.taxes_included is True
    assert order.total_tax == eur(1883)
    assert order.total == eur(11295)
    assert_amounts_add_up(order)


def test_a_given_tax_amount_is_taken_as_the_channel_computed_it() -> None:
    [item] = feed_of(
        row(quantity="1", unit_price="10.00", tax_rate="0.2", tax_amount="1.99")
    ).orders

    assert item.order.lines[0].tax_lines[0].amount == eur(199)
    assert item.order.total == eur(1000 + 490 + 199)


def test_shipping_with_a_title_discount_or_tax_is_sent_as_a_shipping_line() -> None:
    [item] = feed_of(
        row(
            quantity="1",
            unit_price="20.00",
            shipping_charge="6.00",
            shipping_title="Colissimo",
            shipping_discount="1.00",
            shipping_discount_code="SHIP1",
            shipping_tax_rate="0.2",
            shipping_tax_title="TVA",
            taxes_included="true",
        )
    ).orders
    order = item.order

    [shipping] = order.shipping_lines
    assert (shipping.title, shipping.price, shipping.discounted_price) == (
        "Colissimo",
        eur(600),
        eur(500),
    )
    [allocation] = shipping.discount_allocations
    assert (allocation.amount, allocation.discount_id, allocation.title) == (
        eur(100),
        "shipping",
        "SHIP1",
    )
    [discount] = order.discounts
    assert (discount.target, discount.kind, discount.code) == ("shipping", "code", "SHIP1")
    [tax] = shipping.tax_lines
    assert (tax.title, tax.rate, tax.amount) == ("TVA", "0.2", eur(83))  # 5.00 / 6 = 0.833...
    assert order.total_discounts == eur(100)
    assert order.total_tax == eur(83)
    assert order.total == eur(2000 - 100 + 600)
    assert_amounts_add_up(order)


def test_shipping_without_its_own_columns_stays_a_charge_without_a_shipping_line() -> None:
    [item] = feed_of(row(tax_rate="0.2")).orders

    assert item.order.shipping_lines == ()
    assert item.order.shipping_charge == eur(490)


def test_a_shipping_title_alone_makes_a_shipping_line_of_the_charge() -> None:
    [item] = feed_of(row(shipping_title="Express")).orders

    [shipping] = item.order.shipping_lines
    assert (shipping.title, shipping.price, shipping.discounted_price) == (
        "Express",
        eur(490),
        eur(490),
    )
    assert item.order.total_discounts is None  # no discount or tax column: none computed


def test_an_address_without_postcode_or_e_mail_is_taken() -> None:
    [item] = feed_of(
        row(
            currency="HKD",
            customer_email="",
            customer_id="",
            ship_line1="Flat 12B, 88 Nathan Road",
            ship_city="Tsim Sha Tsui",
            ship_region="Kowloon",
            ship_postal_code="",
            ship_country="HK",
        )
    ).orders
    order = item.order

    assert (order.customer.customer_id, order.customer.email) == (None, None)
    assert order.shipping_address is not None
    assert order.shipping_address.postal_code is None
    assert (order.shipping_address.region, order.shipping_address.country) == ("Kowloon", "HK")


def test_billing_address_notes_and_payment_facts_are_carried() -> None:
    [item] = feed_of(
        row(
            bill_name="Babbage Engines Ltd",
            bill_line1="1 Dorset Street",
            bill_city="London",
            bill_postal_code="W1U 4EG",
            bill_country="GB",
            notes="Ring twice",
            financial_status="pending",
            payment_gateway="bank_transfer",
            payment_terms="Net 30",
            payment_due_in_days="30",
        )
    ).orders
    order = item.order

    assert order.billing_address is not None
    assert (order.billing_address.name, order.billing_address.country) == (
        "Babbage Engines Ltd",
        "GB",
    )
    assert order.billing_address.postal_code == "W1U 4EG"
    assert order.notes == "Ring twice"
    assert order.payment is not None
    assert (order.payment.financial_status, order.payment.gateways) == (
        "pending",
        ("bank_transfer",),
    )
    assert order.payment.terms is not None
    assert (order.payment.terms.name, order.payment.terms.due_in_days) == ("Net 30", 30)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"tax_rate": "20%"}, "tax_rate: '20%' is not a decimal fraction from 0 to 1, such as 0.2"),
        ({"tax_rate": "1.5"}, "tax_rate: '1.5' is not a decimal fraction from 0 to 1, such as 0.2"),
        ({"tax_amount": "1.00"}, "tax_amount: given without tax_rate"),
        ({"tax_title": "VAT"}, "tax_title: given without tax_rate"),
        ({"tax_rate": "0.2", "tax_amount": "1.001"}, "tax_amount: '1.001' has more than 2 "),
        (
            {"line_discount": "40.00"},
            "line_discount: '40.00' is more than the line (unit_price x quantity = 39.98)",
        ),
        ({"line_discount": "-1"}, "line_discount: '-1' is negative"),
        ({"line_discount_code": "X"}, "line_discount_code: given without line_discount"),
        ({"line_discount_title": "X"}, "line_discount_title: given without line_discount"),
        ({"title": "x" * 256}, "title: String should have at most 255 characters"),
        ({"line_discount": "1", "line_discount_title": "x" * 256}, "line_discount_title: "),
    ],
)
def test_a_line_value_that_cannot_be_used_rejects_the_order_naming_its_column(
    changes: dict[str, str], reason: str
) -> None:
    feed = feed_of(row(**changes), row(sku="SKU-B"))

    assert feed.orders == []
    assert reasons(feed)[2].startswith(reason)
    assert reasons(feed)[3] == "order MP-1 not imported: see line 2"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"order_discount": "100.00"},
            "order_discount: '100.00' is more than the lines after their own discounts (79.96)",
        ),
        ({"order_discount_code": "X"}, "order_discount_code: given without order_discount"),
        (
            {"shipping_discount": "5.00"},
            "shipping_discount: '5.00' is more than shipping_charge (4.90)",
        ),
        ({"shipping_discount_title": "X"}, "shipping_discount_title: given without shipping_"),
        ({"shipping_tax_rate": "0,2"}, "shipping_tax_rate: '0,2' is not a decimal fraction"),
        ({"shipping_tax_amount": "1"}, "shipping_tax_amount: given without shipping_tax_rate"),
        ({"shipping_title": "x" * 256}, "shipping_title: String should have at most 255"),
        ({"taxes_included": "yes"}, "taxes_included: 'yes' is not true or false"),
        ({"bill_line1": "1 Dorset Street"}, "bill_name: empty, but the billing address is given"),
        ({"bill_country": "XX", "bill_name": "A", "bill_line1": "B"}, "bill_country: Value error"),
        ({"payment_gateway": "card"}, "payment_gateway: given without financial_status"),
        ({"financial_status": "Paid"}, "financial_status: String should match pattern"),
        (
            {"financial_status": "paid", "payment_due_in_days": "30"},
            "payment_due_in_days: given without payment_terms",
        ),
        (
            {"financial_status": "paid", "payment_terms": "Net 30", "payment_due_in_days": "a"},
            "payment_due_in_days: 'a' is not a whole number of days",
        ),
        (
            {"financial_status": "paid", "payment_terms": "Net", "payment_due_in_days": "9999"},
            "payment_due_in_days: Input should be less than or equal to 3650",
        ),
        ({"notes": "x" * 2001}, "notes: String should have at most 2000 characters"),
        ({"ship_region": "x" * 201}, "ship_region: String should have at most 200 characters"),
    ],
)
def test_an_order_value_that_cannot_be_used_rejects_every_row_naming_its_column(
    changes: dict[str, str], reason: str
) -> None:
    feed = feed_of(row(**changes), row(sku="SKU-B", **changes))

    assert feed.orders == []
    assert reasons(feed)[2].startswith(reason)
    assert reasons(feed)[3].startswith(reason)


def test_an_amount_one_column_breaks_twice_is_reported_once() -> None:
    feed = feed_of(row(shipping_charge="99999999999999", shipping_title="Freight"))

    assert reasons(feed)[2].count("shipping_charge: Input should be less than or equal to") == 1


def test_the_taxed_example_feed_has_discounts_taxes_and_addresses_of_every_kind() -> None:
    with TAXED_EXAMPLE.open(newline="", encoding="utf-8") as stream:
        feed = parse_feed(stream, channel="marketplace", submitted_at=NOW)

    assert feed.rejected == []
    assert feed.ignored_columns == []

    def amounts(order: OrderSubmitted) -> tuple[int | None, ...]:
        return tuple(
            None if money is None else money.amount_minor
            for money in (
                order.subtotal,
                order.total_discounts,
                order.shipping_charge,
                order.total_tax,
                order.total,
            )
        )

    assert {item.order.external_order_id: amounts(item.order) for item in feed.orders} == {
        "MP-20001": (20700, 2000, 990, 3282, 19690),
        "MP-20002": (41500, 4500, 2500, 2864, 42364),
        "MP-20003": (88000, 8000, 6000, 0, 86000),
        "MP-20004": (23900, 0, 499, 4066, 24399),
    }
    assert [item.order.taxes_included for item in feed.orders] == [True, False, False, True]
    for item in feed.orders:
        assert_amounts_add_up(item.order)
    hong_kong, no_email = feed.orders[2].order, feed.orders[3].order
    assert hong_kong.shipping_address is not None
    assert hong_kong.shipping_address.postal_code is None
    assert no_email.customer.email is None


def test_every_column_is_described_in_the_module_documentation() -> None:
    undocumented = [
        column for column in COLUMNS if f"`{column}`" not in (marketplace_feed.__doc__ or "")
    ]

    assert undocumented == []


def decimal_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@st.composite
def priced_orders(draw: st.DrawFn) -> list[dict[str, str]]:
    """Rows of one order with random prices, discounts, taxes and shipping, each discount
    no larger than what it is taken off."""
    shipping = draw(st.integers(min_value=0, max_value=5000))
    lines = []
    after_own_discounts = 0
    for number in range(draw(st.integers(min_value=1, max_value=5))):
        quantity = draw(st.integers(min_value=1, max_value=5))
        unit = draw(st.integers(min_value=0, max_value=50_000))
        discount = draw(st.none() | st.integers(min_value=0, max_value=unit * quantity))
        after_own_discounts += unit * quantity - (discount or 0)
        lines.append(
            {
                "sku": f"SKU-{number}",
                "quantity": str(quantity),
                "unit_price": decimal_text(unit),
                "line_discount": "" if discount is None else decimal_text(discount),
                "tax_rate": draw(st.sampled_from(["", "0", "0.2", "0.0725", "0.055", "1"])),
            }
        )
    order = {
        "taxes_included": draw(st.sampled_from(["true", "false", ""])),
        "shipping_charge": decimal_text(shipping),
        "order_discount": decimal_text(draw(st.integers(0, after_own_discounts))),
        "shipping_discount": decimal_text(draw(st.integers(0, shipping))),
        "shipping_tax_rate": draw(st.sampled_from(["", "0.2"])),
    }
    return [row(**order, **line) for line in lines]


@given(rows=priced_orders())
def test_every_computed_amount_satisfies_the_intake_formulas(rows: list[dict[str, str]]) -> None:
    feed = feed_of(*rows)

    assert feed.rejected == []
    [item] = feed.orders
    assert_amounts_add_up(item.order)
