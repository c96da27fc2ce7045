"""The return rules, pure: the request check, state steps and the refund policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.returns.domain import (
    CommandRefusalCode,
    OrderedLine,
    OrderFacts,
    Placement,
    ReceivedLine,
    Refund,
    Refusal,
    RejectionCode,
    RequestedLine,
    Return,
    ReturnReason,
    ReturnStatus,
    Shipment,
    ShippingRefundBranch,
    approval_refusal,
    check_return_request,
    compute_refund,
    default_receiving_warehouse,
    receipt_refusal,
)

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)
SHIPPING = 590


def placement(*lines: OrderedLine) -> Placement:
    return Placement(
        currency="EUR",
        shipping_charge_minor=SHIPPING,
        customer_id="cus_1",
        lines=lines or (OrderedLine("MUG", 3, 1200), OrderedLine("TEE", 2, 2500)),
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


def test_refunds_received_units_at_unit_price_restockable_or_not() -> None:
    approved = rma(ReturnStatus.APPROVED, mugs(2), return_id="rma_now")
    refund = compute_refund(placement(), approved, [ReceivedLine("MUG", 2, 1)], [approved])
    assert refund.lines_amount_minor == 2 * 1200
    assert refund.shipping_refunded_minor == 0
    assert refund.branch is ShippingRefundBranch.NOT_REFUNDED


def test_refunds_shipping_when_a_returned_line_is_the_merchants_fault() -> None:
    approved = rma(ReturnStatus.APPROVED, mugs(1, ReturnReason.DAMAGED), return_id="rma_now")
    refund = compute_refund(placement(), approved, [ReceivedLine("MUG", 1, 0)], [approved])
    assert (refund.lines_amount_minor, refund.shipping_refunded_minor) == (1200, SHIPPING)
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
    assert refund.shipping_refunded_minor == 0


def test_refunds_shipping_when_this_return_completes_the_order() -> None:
    earlier = rma(
        ReturnStatus.COMPLETED,
        mugs(3),
        received=(ReceivedLine("MUG", 3, 3),),
        refund=Refund("rf_1", "EUR", 3600, 0, "p"),
    )
    approved = rma(
        ReturnStatus.APPROVED, RequestedLine("TEE", 2, ReturnReason.OTHER), return_id="rma_now"
    )
    refund = compute_refund(placement(), approved, [ReceivedLine("TEE", 2, 2)], [earlier, approved])
    assert (refund.lines_amount_minor, refund.shipping_refunded_minor) == (5000, SHIPPING)
    assert refund.branch is ShippingRefundBranch.FULLY_RETURNED


def test_refunds_shipping_only_once_per_order() -> None:
    earlier = rma(
        ReturnStatus.COMPLETED,
        mugs(1, ReturnReason.DAMAGED),
        received=(ReceivedLine("MUG", 1, 0),),
        refund=Refund("rf_1", "EUR", 1200, SHIPPING, "p"),
    )
    approved = rma(ReturnStatus.APPROVED, mugs(2, ReturnReason.DAMAGED), return_id="rma_now")
    refund = compute_refund(placement(), approved, [ReceivedLine("MUG", 2, 0)], [earlier])
    assert (refund.lines_amount_minor, refund.shipping_refunded_minor) == (2400, 0)
    assert refund.branch is ShippingRefundBranch.ALREADY_REFUNDED


def test_units_of_a_sku_on_several_lines_are_refunded_cheapest_first_across_returns() -> None:
    two_prices = placement(OrderedLine("MUG", 1, 1000), OrderedLine("MUG", 2, 1500))
    first = rma(ReturnStatus.APPROVED, mugs(2), return_id="rma_a")
    first_refund = compute_refund(two_prices, first, [ReceivedLine("MUG", 2, 2)], [first])
    completed = rma(
        ReturnStatus.COMPLETED, mugs(2), received=(ReceivedLine("MUG", 2, 2),), return_id="rma_a"
    )
    second = rma(ReturnStatus.APPROVED, mugs(1), return_id="rma_b")
    second_refund = compute_refund(
        two_prices, second, [ReceivedLine("MUG", 1, 1)], [completed, second]
    )
    assert first_refund.lines_amount_minor == 1000 + 1500
    assert second_refund.lines_amount_minor == 1500
    assert second_refund.branch is ShippingRefundBranch.FULLY_RETURNED
