"""The ledger that joins what the benchmark sent with what it saw on the topics."""

from __future__ import annotations

from bench.observer import COMPLETED, DELIVERED, NOTIFIED, RESERVED, SHIPPED, SUBMITTED, FlowLedger
from bench.orders import external_order_id, make_order, phase_of


def test_an_order_completes_once_delivered_and_notified_in_any_order_of_arrival() -> None:
    ledger = FlowLedger()
    external = external_order_id("run1", "main", 0)
    ledger.submitted(external, 100.0)
    # Topics interleave: the last steps may be seen before OrderPlaced.
    ledger.delivered("ord-1", "evt-delivered", 103.0)
    ledger.notified("ord-1", "evt-delivered", 103.4)
    assert ledger.phase("main").completed == 0
    ledger.placed("ord-1", external, 100.2)
    assert ledger.phase("main").completed == 1
    assert ledger.finished("main")
    (flow,) = ledger.flows("main")
    assert flow[SUBMITTED] == 100.0
    assert flow[COMPLETED] == 103.4


def test_a_duplicate_step_keeps_the_first_time_and_counts_once() -> None:
    ledger = FlowLedger()
    external = external_order_id("run1", "main", 0)
    ledger.submitted(external, 100.0)
    ledger.placed("ord-1", external, 100.1)
    for step, at in ((RESERVED, 100.3), (SHIPPED, 100.5), (DELIVERED, 100.6), (NOTIFIED, 101.0)):
        ledger.step("ord-1", step, at)
    ledger.step("ord-1", RESERVED, 105.0)
    ledger.step("ord-1", NOTIFIED, 106.0)
    assert ledger.phase("main").completed == 1
    assert ledger.flows("main")[0][RESERVED] == 100.3


def test_the_delivery_notice_seen_before_the_delivery_waits_for_it() -> None:
    ledger = FlowLedger()
    external = external_order_id("run1", "main", 0)
    ledger.submitted(external, 100.0)
    ledger.placed("ord-1", external, 100.1)
    # Topics interleave: the e-mail about a delivery may come in before the delivery.
    ledger.notified("ord-1", "evt-shipped", 100.5)
    ledger.notified("ord-1", "evt-delivered", 100.9)
    ledger.notified("ord-1", "evt-delivered", 100.8)
    assert ledger.phase("main").completed == 0
    ledger.delivered("ord-1", "evt-delivered", 100.7)
    assert ledger.phase("main").completed == 1
    flow = ledger.flows("main")[0]
    assert (flow[DELIVERED], flow[NOTIFIED], flow[COMPLETED]) == (100.7, 100.8, 100.8)
    assert ledger.steps["ord-1"].notices == {}


def test_only_an_e_mail_caused_by_a_delivery_is_its_notice() -> None:
    ledger = FlowLedger()
    external = external_order_id("run1", "main", 0)
    ledger.submitted(external, 100.0)
    ledger.placed("ord-1", external, 100.1)
    ledger.delivered("ord-1", "evt-delivered", 100.7)
    ledger.notified("ord-1", "evt-shipped", 100.8)
    assert ledger.phase("main").completed == 0
    ledger.notified("ord-1", "evt-delivered", 101.0)
    assert ledger.phase("main").completed == 1
    assert ledger.flows("main")[0][NOTIFIED] == 101.0


def test_orders_the_run_never_submitted_are_counted_as_strangers() -> None:
    ledger = FlowLedger()
    ledger.submitted(external_order_id("run1", "main", 0), 100.0)
    ledger.placed("ord-9", "someone-elses-order", 100.1)
    ledger.rejected("another-one")
    assert ledger.strangers == 2
    assert ledger.order_ids == {}
    assert ledger.phase("main").failed == 0


def test_rejected_and_unreserved_orders_finish_without_completing() -> None:
    ledger = FlowLedger()
    rejected, short = (external_order_id("run1", "main", n) for n in (0, 1))
    ledger.submitted(rejected, 1.0)
    ledger.submitted(short, 2.0)
    ledger.rejected(rejected)
    ledger.placed("ord-2", short, 2.1)
    assert not ledger.finished("main")
    ledger.reservation_failed("ord-2")
    counts = ledger.phase("main")
    assert (counts.submitted, counts.completed, counts.failed) == (2, 0, 2)
    assert ledger.finished("main")


def test_phases_are_kept_apart_and_flows_come_in_submission_order() -> None:
    ledger = FlowLedger()
    for number in (2, 0, 1):
        ledger.submitted(external_order_id("run1", "search0", number), float(number))
    ledger.submitted(external_order_id("run1", "main", 0), 9.0)
    assert [flow[SUBMITTED] for flow in ledger.flows("search0")] == [0.0, 1.0, 2.0]
    assert ledger.phase("main").submitted == 1
    assert ledger.phase("scale2").submitted == 0


def test_orders_are_valid_submissions_that_name_their_phase() -> None:
    skus = tuple(f"BENCH-run1-{n}" for n in range(8))
    orders = [make_order("run1", "curve50", number, skus) for number in range(6)]
    assert {phase_of(order.external_order_id) for order in orders} == {"curve50"}
    assert {len(order.lines) for order in orders} == {1, 2}
    countries = {order.shipping_address and order.shipping_address.country for order in orders}
    assert countries == {"FR", "DE"}
    for order in orders:
        assert order.subtotal.amount_minor == sum(
            line.line_total.amount_minor for line in order.lines
        )
        assert order.total.amount_minor == (
            order.subtotal.amount_minor + order.shipping_charge.amount_minor
        )
