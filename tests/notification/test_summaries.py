"""The money of an order and of a refund, as a customer's e-mail adds it up."""

from __future__ import annotations

from services.notification.summaries import (
    LabelledAmount,
    RefundedLineSummary,
    ShippingSummary,
    TaxSummary,
    order_summary,
    refund_summary,
)
from tests.notification import samples

ORDER = "ord_7"


def test_totals_each_discount_over_the_lines_and_the_shipping() -> None:
    summary = order_summary(samples.discounted_order(ORDER, taxes_included=True), "en")
    assert summary.discounts == (
        LabelledAmount("Loyal customer", "-€5.00"),
        LabelledAmount("SPRING10", "-€5.23"),
        LabelledAmount("Free shipping over €40", "-€4.99"),
    )
    assert summary.shipping == (ShippingSummary("Standard", None),)
    assert summary.subtotal == "€47.11"


def test_a_line_or_shipping_without_its_discounted_amount_is_worked_out() -> None:
    order = samples.discounted_order(ORDER, taxes_included=True)
    shipping = order.shipping_lines[0]
    undiscounted = order.model_copy(
        update={
            "lines": tuple(
                line.model_copy(update={"discounted_total": None}) for line in order.lines
            ),
            "shipping_lines": (shipping.model_copy(update={"discounted_price": None}),),
        }
    )
    summary = order_summary(undiscounted, "en")
    assert [line.amount for line in summary.lines] == ["€40.50", "€6.61"]
    assert summary.shipping == (ShippingSummary("Standard", None),)


def test_an_order_of_the_first_contract_version_has_no_discount_nor_tax() -> None:
    summary = order_summary(samples.order_placed(ORDER), "en")
    assert [(line.name, line.discounts, line.amount) for line in summary.lines] == [
        ("MUG-01", (), "€25.00"),
        ("TEA-02", (), "€7.34"),
    ]
    assert summary.discounts == ()
    assert summary.shipping == (ShippingSummary(None, "€4.99"),)
    assert summary.tax is None


def test_an_order_collected_with_nothing_paid_for_shipping_has_no_shipping() -> None:
    summary = order_summary(samples.point_of_sale_order(ORDER), "en")
    assert summary.shipping == ()
    assert summary.delivery_address is None


def test_names_the_tax_all_lines_share() -> None:
    summary = order_summary(samples.discounted_order(ORDER, taxes_included=False), "fr")
    assert summary.tax == TaxSummary(amount="9,42\u00a0€", included=False, title="VAT")


def test_refund_breakdown_is_absent_when_the_refund_has_none() -> None:
    broken_down = refund_summary(samples.refund_with_breakdown(ORDER), "en")
    assert (broken_down.goods, broken_down.tax, broken_down.shipping, broken_down.total) == (
        "€16.87",
        "€4.21",
        "€4.16",
        "€25.24",
    )
    assert broken_down.lines == (RefundedLineSummary("CHAIR-OAK", 1, "€20.25"),)
    plain = refund_summary(samples.refund_issued(ORDER, amount_minor=1234), "en")
    assert (plain.lines, plain.goods, plain.tax, plain.shipping) == ((), None, None, None)
    assert plain.total == "€12.34"
