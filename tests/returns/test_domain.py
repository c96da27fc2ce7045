"""The return rules, pure: the request check, state steps and the refund policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.returns.domain import (
    NOTHING,
    CommandRefusalCode,
    OrderedLine,
    OrderFacts,
    Placement,
    ReceivedLine,
    Refund,
    RefundComputation,
    RefundedLine,
    Refusal,
    RejectionCode,
    RequestedLine,
    Return,
    ReturnReason,
    ReturnStatus,
    Shipment,
    ShippingRefundBranch,
    TaxedAmount,
    approval_refusal,
    check_return_request,
    compute_refund,
    default_receiving_warehouse,
    paid,
    receipt_refusal,
)

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)
SHIPPING = 590
SHIPPING_PAID = TaxedAmount(SHIPPING, 0)


def at_unit_price(sku: str, quantity: int, unit_price: int) -> OrderedLine:
    """A line paid at its list price, without tax."""
    return OrderedLine(sku, quantity, TaxedAmount(unit_price * quantity, 0))


def placement(*lines: OrderedLine, shipping: TaxedAmount = SHIPPING_PAID) -> Placement:
    return Placement(
        currency="EUR",
        shipping_paid=shipping,
        customer_id="cus_1",
        lines=lines or (at_unit_price("MUG", 3, 1200), at_unit_price("TEE", 2, 2500)),
    )


def shipment(
    quantities: dict[str, int],
    *,
    shipped_days_ago: float,
    delivered_days_ago: float | None,
    shipment_id: str = "shp_1",
    warehouse_id: str = "wh-paris",
) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        warehouse_id=warehouse_id,
        shipped_at=NOW - timedelta(days=shipped_days_ago),
        quantities=quantities,
        delivered_at=None
        if delivered_days_ago is None
        else NOW - timedelta(days=delivered_days_ago),
    )


def order(*shipments: Shipment, placed: Placement | None = None) -> OrderFacts:
    return OrderFacts(order_id="ord_1", placement=placed or placement(), shipments=shipments)


DELIVERED_ORDER = order(shipment({"MUG": 3, "TEE": 2}, shipped_days_ago=12, delivered_days_ago=10))


def rma(
    status: ReturnStatus,
    *lines: RequestedLine,
    received: tuple[ReceivedLine, ...] = (),
    return_id: str = "rma_earlier",
    refund: Refund | None = None,
) -> Return:
    return Return(
        return_id=return_id,
        order_id="ord_1",
        status=status,
        lines=lines,
        requested_at=NOW - timedelta(days=1),
        label_reference="RL-1" if status is not ReturnStatus.REQUESTED else None,
        received=received,
        refund=refund,
    )


def mugs(quantity: int, reason: ReturnReason = ReturnReason.NO_LONGER_NEEDED) -> RequestedLine:
    return RequestedLine("MUG", quantity, reason)


def codes(refusals: tuple[Refusal, ...]) -> list[RejectionCode]:
    return [refusal.code for refusal in refusals]


# The request check


def test_accepts_request_for_delivered_units_within_the_window() -> None:
    assert check_return_request(DELIVERED_ORDER, [mugs(3)], [], now=NOW, window=WINDOW) == ()


def test_refuses_request_once_the_window_after_delivery_closed() -> None:
    late = order(shipment({"MUG": 3}, shipped_days_ago=33, delivered_days_ago=31))
    refusals = check_return_request(late, [mugs(1)], [], now=NOW, window=WINDOW)
    assert codes(refusals) == [RejectionCode.OUTSIDE_RETURN_WINDOW]
    assert refusals[0].field == "lines.0.sku"


def test_accepts_request_on_the_last_day_of_the_window() -> None:
    edge = order(shipment({"MUG": 3}, shipped_days_ago=32, delivered_days_ago=30))
    assert check_return_request(edge, [mugs(1)], [], now=NOW, window=WINDOW) == ()


def test_window_counts_from_shipping_while_the_shipment_is_not_delivered() -> None:
    in_transit = order(shipment({"MUG": 3}, shipped_days_ago=20, delivered_days_ago=None))
    lost = order(shipment({"MUG": 3}, shipped_days_ago=31, delivered_days_ago=None))
    assert check_return_request(in_transit, [mugs(1)], [], now=NOW, window=WINDOW) == ()
    assert codes(check_return_request(lost, [mugs(1)], [], now=NOW, window=WINDOW)) == [
        RejectionCode.OUTSIDE_RETURN_WINDOW
    ]


def test_window_of_a_sku_runs_from_its_latest_shipment() -> None:
    split = order(
        shipment({"MUG": 1}, shipped_days_ago=45, delivered_days_ago=40, shipment_id="shp_1"),
        shipment({"MUG": 2}, shipped_days_ago=6, delivered_days_ago=5, shipment_id="shp_2"),
        shipment({"TEE": 2}, shipped_days_ago=45, delivered_days_ago=40, shipment_id="shp_3"),
    )
    tees = RequestedLine("TEE", 1, ReturnReason.OTHER)
    refusals = check_return_request(split, [mugs(3), tees], [], now=NOW, window=WINDOW)
    assert [(refusal.code, refusal.field) for refusal in refusals] == [
        (RejectionCode.OUTSIDE_RETURN_WINDOW, "lines.1.sku")
    ]


def test_refuses_more_units_than_were_shipped() -> None:
    refusals = check_return_request(DELIVERED_ORDER, [mugs(4)], [], now=NOW, window=WINDOW)
    assert codes(refusals) == [RejectionCode.QUANTITY_EXCEEDS_DELIVERED]
    assert refusals[0].field == "lines.0.quantity"


def test_counts_units_held_by_earlier_open_returns() -> None:
    earlier = [
        rma(ReturnStatus.REQUESTED, mugs(1), return_id="rma_a"),
        rma(ReturnStatus.APPROVED, mugs(1), return_id="rma_b"),
    ]
    assert check_return_request(DELIVERED_ORDER, [mugs(1)], earlier, now=NOW, window=WINDOW) == ()
    assert codes(
        check_return_request(DELIVERED_ORDER, [mugs(2)], earlier, now=NOW, window=WINDOW)
    ) == [RejectionCode.QUANTITY_EXCEEDS_DELIVERED]


def test_rejected_returns_hold_nothing_and_completed_ones_hold_what_came_back() -> None:
    earlier = [
        rma(ReturnStatus.REJECTED, mugs(3), return_id="rma_a"),
        rma(
            ReturnStatus.COMPLETED,
            mugs(2),
            received=(ReceivedLine("MUG", 1, 1),),
            return_id="rma_b",
        ),
    ]
    assert check_return_request(DELIVERED_ORDER, [mugs(2)], earlier, now=NOW, window=WINDOW) == ()
    assert codes(
        check_return_request(DELIVERED_ORDER, [mugs(3)], earlier, now=NOW, window=WINDOW)
    ) == [RejectionCode.QUANTITY_EXCEEDS_DELIVERED]


def test_refuses_a_sku_that_is_not_in_the_order() -> None:
    refusals = check_return_request(
        DELIVERED_ORDER,
        [RequestedLine("SOCK", 1, ReturnReason.OTHER)],
        [],
        now=NOW,
        window=WINDOW,
    )
    assert [(refusal.code, refusal.field) for refusal in refusals] == [
        (RejectionCode.UNKNOWN_SKU, "lines.0.sku")
    ]


def test_refuses_an_ordered_sku_that_has_not_shipped_yet() -> None:
    partly_shipped = order(shipment({"MUG": 3}, shipped_days_ago=2, delivered_days_ago=1))
    tees = RequestedLine("TEE", 1, ReturnReason.DAMAGED)
    assert codes(check_return_request(partly_shipped, [tees], [], now=NOW, window=WINDOW)) == [
        RejectionCode.QUANTITY_EXCEEDS_DELIVERED
    ]


def test_refuses_any_return_while_nothing_has_shipped() -> None:
    unshipped = order()
    assert codes(check_return_request(unshipped, [mugs(1)], [], now=NOW, window=WINDOW)) == [
        RejectionCode.NOT_DELIVERED
    ]


def test_reports_every_problem_of_a_request() -> None:
    late = order(shipment({"MUG": 3}, shipped_days_ago=50, delivered_days_ago=45))
    refusals = check_return_request(
        late,
        [mugs(5), RequestedLine("SOCK", 1, ReturnReason.OTHER)],
        [],
        now=NOW,
        window=WINDOW,
    )
    assert codes(refusals) == [
        RejectionCode.QUANTITY_EXCEEDS_DELIVERED,
        RejectionCode.OUTSIDE_RETURN_WINDOW,
        RejectionCode.UNKNOWN_SKU,
    ]


# Steps of a return


def test_only_a_requested_return_can_be_approved_or_rejected() -> None:
    assert approval_refusal(rma(ReturnStatus.REQUESTED, mugs(1))) is None
    for status in (ReturnStatus.APPROVED, ReturnStatus.REJECTED, ReturnStatus.COMPLETED):
        refusal = approval_refusal(rma(status, mugs(1)))
        assert refusal is not None and refusal.code is CommandRefusalCode.RETURN_NOT_REQUESTED


def test_only_an_approved_return_can_be_received() -> None:
    received = [ReceivedLine("MUG", 1, 1)]
    for status in (ReturnStatus.REQUESTED, ReturnStatus.REJECTED, ReturnStatus.COMPLETED):
        refusal = receipt_refusal(rma(status, mugs(1)), DELIVERED_ORDER, received)
        assert refusal is not None and refusal.code is CommandRefusalCode.RETURN_NOT_APPROVED
    assert receipt_refusal(rma(ReturnStatus.APPROVED, mugs(1)), DELIVERED_ORDER, received) is None


def test_refuses_receiving_more_than_the_return_or_another_sku() -> None:
    approved = rma(ReturnStatus.APPROVED, mugs(2))
    too_many = receipt_refusal(approved, DELIVERED_ORDER, [ReceivedLine("MUG", 3, 0)])
    other_sku = receipt_refusal(approved, DELIVERED_ORDER, [ReceivedLine("TEE", 1, 1)])
    assert too_many is not None and too_many.code is CommandRefusalCode.QUANTITY_EXCEEDS_RETURN
    assert other_sku is not None and other_sku.code is CommandRefusalCode.SKU_NOT_IN_RETURN


def test_refuses_receiving_while_the_order_prices_are_unknown() -> None:
    unpriced = OrderFacts("ord_1", None, DELIVERED_ORDER.shipments)
    refusal = receipt_refusal(
        rma(ReturnStatus.APPROVED, mugs(1)), unpriced, [ReceivedLine("MUG", 1, 1)]
    )
    assert refusal is not None and refusal.code is CommandRefusalCode.ORDER_PRICES_UNKNOWN


def test_receiving_warehouse_defaults_to_the_one_the_skus_shipped_from() -> None:
    split = order(
        shipment({"MUG": 3}, shipped_days_ago=2, delivered_days_ago=1, warehouse_id="wh-a"),
        shipment(
            {"TEE": 2},
            shipped_days_ago=2,
            delivered_days_ago=1,
            warehouse_id="wh-b",
            shipment_id="shp_2",
        ),
    )
    assert default_receiving_warehouse(split, ["MUG"]) == "wh-a"
    assert default_receiving_warehouse(split, ["MUG", "TEE"]) is None


# The refund policy


def test_refunds_what_received_units_paid_restockable_or_not() -> None:
    approved = rma(ReturnStatus.APPROVED, mugs(2), return_id="rma_now")
    refund = compute_refund(placement(), approved, [ReceivedLine("MUG", 2, 1)], [approved])
    assert refund.lines == (RefundedLine("MUG", 2, TaxedAmount(2 * 1200, 0)),)
    assert refund.shipping == NOTHING
    assert refund.branch is ShippingRefundBranch.NOT_REFUNDED


def test_refunds_shipping_when_a_returned_line_is_the_merchants_fault() -> None:
    approved = rma(ReturnStatus.APPROVED, mugs(1, ReturnReason.DAMAGED), return_id="rma_now")
    refund = compute_refund(placement(), approved, [ReceivedLine("MUG", 1, 0)], [approved])
    assert (refund.lines_total.amount_minor, refund.shipping.amount_minor) == (1200, SHIPPING)
    assert refund.branch is ShippingRefundBranch.MERCHANT_FAULT
    assert refund.policy.endswith(":merchant_fault")


def test_merchant_fault_counts_only_for_units_that_came_back() -> None:
    approved = rma(
        ReturnStatus.APPROVED,
        mugs(1),
        RequestedLine("TEE", 1, ReturnReason.WRONG_ITEM),
        return_id="rma_now",
    )
    refund = compute_refund(placement(), approved, [ReceivedLine("MUG", 1, 1)], [approved])
    assert refund.shipping == NOTHING


def test_refunds_shipping_when_this_return_completes_the_order() -> None:
    earlier = rma(
        ReturnStatus.COMPLETED,
        mugs(3),
        received=(ReceivedLine("MUG", 3, 3),),
        refund=Refund("rf_1", "EUR", TaxedAmount(3600, 0), NOTHING, "p", ()),
    )
    approved = rma(
        ReturnStatus.APPROVED, RequestedLine("TEE", 2, ReturnReason.OTHER), return_id="rma_now"
    )
    refund = compute_refund(placement(), approved, [ReceivedLine("TEE", 2, 2)], [earlier, approved])
    assert (refund.lines_total.amount_minor, refund.shipping.amount_minor) == (5000, SHIPPING)
    assert refund.branch is ShippingRefundBranch.FULLY_RETURNED


def test_refunds_shipping_only_once_per_order() -> None:
    earlier = rma(
        ReturnStatus.COMPLETED,
        mugs(1, ReturnReason.DAMAGED),
        received=(ReceivedLine("MUG", 1, 0),),
        refund=Refund("rf_1", "EUR", TaxedAmount(1200, 0), TaxedAmount(SHIPPING, 0), "p", ()),
    )
    approved = rma(ReturnStatus.APPROVED, mugs(2, ReturnReason.DAMAGED), return_id="rma_now")
    refund = compute_refund(placement(), approved, [ReceivedLine("MUG", 2, 0)], [earlier])
    assert (refund.lines_total.amount_minor, refund.shipping.amount_minor) == (2400, 0)
    assert refund.branch is ShippingRefundBranch.ALREADY_REFUNDED


def returned_one_by_one(ordered: Placement, sku: str, count: int) -> list[TaxedAmount]:
    """What each of `count` units of the SKU refunds when they come back one per return."""
    refunds: list[TaxedAmount] = []
    earlier: list[Return] = []
    for number in range(count):
        approved = rma(ReturnStatus.APPROVED, RequestedLine(sku, 1, ReturnReason.OTHER))
        received = ReceivedLine(sku, 1, 1)
        refunds.append(compute_refund(ordered, approved, [received], earlier).lines_total)
        earlier.append(
            rma(
                ReturnStatus.COMPLETED,
                RequestedLine(sku, 1, ReturnReason.OTHER),
                received=(received,),
                return_id=f"rma_{number}",
            )
        )
    return refunds


def test_paid_adds_the_tax_to_prices_that_exclude_it() -> None:
    assert paid(2400, 480, taxes_included=False) == TaxedAmount(2880, 480)


def test_paid_holds_the_tax_within_prices_that_include_it() -> None:
    assert paid(2400, 400, taxes_included=True) == TaxedAmount(2400, 400)


def test_paid_caps_an_included_tax_at_the_price() -> None:
    assert paid(3, 5, taxes_included=True) == TaxedAmount(3, 3)


def test_a_discounted_taxed_line_returned_unit_by_unit_refunds_exactly_what_was_paid() -> None:
    # 3 mugs at 12.00 less 6.01 of discounts, 6.00 of tax added on top: 35.99 paid.
    line = OrderedLine("MUG", 3, paid(3600 - 601, 600, taxes_included=False))
    refunds = returned_one_by_one(placement(line), "MUG", 3)
    assert refunds == [
        TaxedAmount(999 + 200, 200),
        TaxedAmount(1000 + 200, 200),
        TaxedAmount(1000 + 200, 200),
    ]
    assert sum(refunds, NOTHING) == line.paid


def test_the_rounding_remainder_goes_to_the_last_unit() -> None:
    line = OrderedLine("MUG", 3, paid(1000, 100, taxes_included=True))
    refunds = returned_one_by_one(placement(line), "MUG", 3)
    assert refunds == [
        TaxedAmount(300 + 33, 33),
        TaxedAmount(300 + 33, 33),
        TaxedAmount(300 + 34, 34),
    ]


def test_goods_worth_less_than_a_minor_unit_each_never_refund_below_zero() -> None:
    # 5 units paid 0.03, 0.02 of it tax: shared as one sum, a unit could refund more tax
    # than money; shared apart, goods and tax each stay whole.
    line = OrderedLine("PIN", 5, TaxedAmount(3, 2))
    refunds = returned_one_by_one(placement(line), "PIN", 5)
    assert all(0 <= refund.tax_minor <= refund.amount_minor for refund in refunds)
    assert sum(refunds, NOTHING) == line.paid


def test_tax_included_prices_refund_the_price_with_its_tax_within() -> None:
    included = OrderedLine("MUG", 2, paid(2400, 400, taxes_included=True))
    excluded = OrderedLine("MUG", 2, paid(2400, 480, taxes_included=False))
    approved = rma(ReturnStatus.APPROVED, mugs(1), return_id="rma_now")
    received = [ReceivedLine("MUG", 1, 1)]
    assert compute_refund(placement(included), approved, received, []).lines_total == (
        TaxedAmount(1200, 200)
    )
    assert compute_refund(placement(excluded), approved, received, []).lines_total == (
        TaxedAmount(1440, 240)
    )


def test_refunds_a_lines_share_of_an_order_level_discount() -> None:
    # 10.00 off the order, allocated 6.00 to the mugs and 4.00 to the tees.
    ordered = placement(
        OrderedLine("MUG", 3, paid(3600 - 600, 0, taxes_included=False)),
        OrderedLine("TEE", 2, paid(5000 - 400, 0, taxes_included=False)),
    )
    approved = rma(
        ReturnStatus.APPROVED, RequestedLine("TEE", 1, ReturnReason.OTHER), return_id="rma_now"
    )
    refund = compute_refund(ordered, approved, [ReceivedLine("TEE", 1, 1)], [])
    assert refund.lines == (RefundedLine("TEE", 1, TaxedAmount(2300, 0)),)


def test_units_of_a_sku_on_several_lines_are_matched_lowest_paid_first_across_returns() -> None:
    # The 15.00 mugs were half price: at 7.50 each they paid less than the 10.00 one.
    two_lines = placement(
        OrderedLine("MUG", 1, TaxedAmount(1000, 0)),
        OrderedLine("MUG", 2, paid(3000 - 1500, 0, taxes_included=False)),
    )
    first = rma(ReturnStatus.APPROVED, mugs(2), return_id="rma_a")
    first_refund = compute_refund(two_lines, first, [ReceivedLine("MUG", 2, 2)], [first])
    completed = rma(
        ReturnStatus.COMPLETED, mugs(2), received=(ReceivedLine("MUG", 2, 2),), return_id="rma_a"
    )
    second = rma(ReturnStatus.APPROVED, mugs(1), return_id="rma_b")
    second_refund = compute_refund(
        two_lines, second, [ReceivedLine("MUG", 1, 1)], [completed, second]
    )
    assert first_refund.lines_total == TaxedAmount(750 + 750, 0)
    assert second_refund.lines_total == TaxedAmount(1000, 0)
    assert second_refund.branch is ShippingRefundBranch.FULLY_RETURNED


def test_paid_per_unit_is_compared_exactly_not_rounded() -> None:
    # 5.005 a unit on the first line, 5.00 on the second: the second comes back first.
    two_lines = placement(
        OrderedLine("MUG", 2, TaxedAmount(1001, 0)), OrderedLine("MUG", 3, TaxedAmount(1500, 0))
    )
    approved = rma(ReturnStatus.APPROVED, mugs(2), return_id="rma_now")
    refund = compute_refund(two_lines, approved, [ReceivedLine("MUG", 2, 2)], [])
    assert refund.lines_total == TaxedAmount(1000, 0)


def test_refunds_shipping_paid_after_its_discount_with_its_tax_on_merchant_fault() -> None:
    # Shipping 9.90 less a 5.00 shipping discount, 20 % tax added: 5.88 paid.
    shipping = paid(990 - 500, 98, taxes_included=False)
    ordered = placement(at_unit_price("MUG", 3, 1200), shipping=shipping)
    approved = rma(ReturnStatus.APPROVED, mugs(1, ReturnReason.DAMAGED), return_id="rma_now")
    refund = compute_refund(ordered, approved, [ReceivedLine("MUG", 1, 0)], [approved])
    assert refund.shipping == TaxedAmount(588, 98)
    assert refund.branch is ShippingRefundBranch.MERCHANT_FAULT


def test_an_order_stored_before_paid_amounts_refunds_at_unit_price() -> None:
    # The migration reads an old line as paid = unit price * quantity, with no tax.
    old = placement(at_unit_price("MUG", 3, 1199))
    assert returned_one_by_one(old, "MUG", 3) == [TaxedAmount(1199, 0)] * 3


def test_a_refund_breaks_its_amount_into_goods_tax_and_shipping() -> None:
    computation = RefundComputation(
        lines=(
            RefundedLine("MUG", 1, TaxedAmount(1440, 240)),
            RefundedLine("TEE", 2, TaxedAmount(6000, 1000)),
        ),
        shipping=TaxedAmount(588, 98),
        branch=ShippingRefundBranch.MERCHANT_FAULT,
    )
    refund = Refund(
        "rf_1",
        "EUR",
        computation.lines_total,
        computation.shipping,
        computation.policy,
        computation.lines,
    )
    assert (refund.lines_amount_minor, refund.shipping_refunded_minor) == (7440, 588)
    assert (refund.goods_amount_minor, refund.tax_amount_minor) == (6200, 240 + 1000 + 98)
    assert refund.shipping_amount_minor == 490
    assert refund.amount_minor == 7440 + 588 == 6200 + 1338 + 490


def test_refuses_to_refund_more_units_than_were_ordered() -> None:
    approved = rma(ReturnStatus.APPROVED, mugs(4), return_id="rma_now")
    with pytest.raises(ValueError, match="4 units of MUG returned, 3 ordered"):
        compute_refund(placement(), approved, [ReceivedLine("MUG", 4, 4)], [])
