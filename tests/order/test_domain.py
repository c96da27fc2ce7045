"""The order's rules without I/O: the status state machine, and what shipment and return
facts make of an order's status and completion."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import product
from uuid import UUID

import pytest

from contracts.base import new_event_id
from services.order.domain import (
    TRANSITIONS,
    Confirmation,
    FinalStatus,
    OrderStatus,
    Refusal,
    RefusalCode,
    ReturnFacts,
    ShipmentFacts,
    ShipmentStatus,
    Transition,
    address_change,
    cancellation,
    completion,
    confirmation,
    delivered_at,
    derived_status,
    order_id_from,
    reservation_failure,
    shipped_quantities,
    status_change,
    transition,
)

S = OrderStatus
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# --- order ids -------------------------------------------------------------------------------


def test_order_id_is_ord_and_the_uuid_hex_and_fits_the_contract() -> None:
    unique = new_event_id()
    order_id = order_id_from(unique)
    assert order_id == f"ord_{unique.hex}"
    assert UUID(hex=order_id.removeprefix("ord_")) == unique
    assert len(order_id) <= 64 and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]*", order_id)


def test_order_ids_sort_by_creation_time() -> None:
    first, second = order_id_from(new_event_id()), order_id_from(new_event_id())
    assert first < second


# --- the transition table ----------------------------------------------------------------------

ALLOWED = {
    (S.PLACED, S.CONFIRMED),
    (S.PLACED, S.CANCELLED),
    (S.PLACED, S.PARTIALLY_SHIPPED),
    (S.PLACED, S.SHIPPED),
    (S.PLACED, S.DELIVERED),
    (S.CONFIRMED, S.CANCELLED),
    (S.CONFIRMED, S.PARTIALLY_SHIPPED),
    (S.CONFIRMED, S.SHIPPED),
    (S.CONFIRMED, S.DELIVERED),
    (S.PARTIALLY_SHIPPED, S.SHIPPED),
    (S.PARTIALLY_SHIPPED, S.DELIVERED),
    (S.PARTIALLY_SHIPPED, S.RETURN_REQUESTED),
    (S.PARTIALLY_SHIPPED, S.PARTIALLY_RETURNED),
    (S.PARTIALLY_SHIPPED, S.RETURNED),
    (S.SHIPPED, S.DELIVERED),
    (S.SHIPPED, S.RETURN_REQUESTED),
    (S.SHIPPED, S.PARTIALLY_RETURNED),
    (S.SHIPPED, S.RETURNED),
    (S.DELIVERED, S.RETURN_REQUESTED),
    (S.DELIVERED, S.PARTIALLY_RETURNED),
    (S.DELIVERED, S.RETURNED),
    (S.RETURN_REQUESTED, S.PARTIALLY_RETURNED),
    (S.RETURN_REQUESTED, S.RETURNED),
    (S.RETURN_REQUESTED, S.SHIPPED),
    (S.RETURN_REQUESTED, S.DELIVERED),
    (S.PARTIALLY_RETURNED, S.RETURN_REQUESTED),
    (S.PARTIALLY_RETURNED, S.RETURNED),
}


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allows_transition(current: OrderStatus, target: OrderStatus) -> None:
    assert transition(current, target) == Transition(current, target)


REFUSED = sorted(set(product(S, S)) - ALLOWED)


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_refuses_transition(current: OrderStatus, target: OrderStatus) -> None:
    assert isinstance(transition(current, target), Refusal)


def test_the_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(S)


def test_refuses_any_transition_out_of_a_terminal_status_with_its_own_code() -> None:
    assert transition(S.CANCELLED, S.CONFIRMED) == Refusal(
        RefusalCode.ALREADY_CANCELLED, "the order is cancelled"
    )
    assert isinstance(refusal := transition(S.REJECTED, S.PLACED), Refusal)
    assert refusal.code is RefusalCode.ORDER_REJECTED
    assert isinstance(refusal := transition(S.RETURNED, S.DELIVERED), Refusal)
    assert refusal.code is RefusalCode.INVALID_TRANSITION


def test_refuses_every_transition_of_a_completed_order() -> None:
    refusal = transition(S.DELIVERED, S.RETURN_REQUESTED, completed=True)
    assert isinstance(refusal, Refusal) and refusal.code is RefusalCode.ORDER_COMPLETED


def test_status_change_is_none_when_the_facts_keep_the_status() -> None:
    assert status_change(S.SHIPPED, S.SHIPPED, completed=False) is None


# --- commands and stock answers --------------------------------------------------------------


@pytest.mark.parametrize("status", [S.PLACED, S.CONFIRMED])
def test_cancels_an_order_before_anything_shipped(status: OrderStatus) -> None:
    assert cancellation(status) == Transition(status, S.CANCELLED)
    assert address_change(status) is None


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (S.CANCELLED, RefusalCode.ALREADY_CANCELLED),
        (S.REJECTED, RefusalCode.ORDER_REJECTED),
        (S.PARTIALLY_SHIPPED, RefusalCode.ALREADY_SHIPPED),
        (S.SHIPPED, RefusalCode.ALREADY_SHIPPED),
        (S.DELIVERED, RefusalCode.ALREADY_SHIPPED),
        (S.RETURN_REQUESTED, RefusalCode.ALREADY_SHIPPED),
        (S.PARTIALLY_RETURNED, RefusalCode.ALREADY_SHIPPED),
        (S.RETURNED, RefusalCode.ALREADY_SHIPPED),
    ],
)
def test_refuses_cancel_and_address_change_once_shipped_or_closed(
    status: OrderStatus, code: RefusalCode
) -> None:
    for decision in (cancellation(status), address_change(status)):
        assert isinstance(decision, Refusal) and decision.code is code


def test_confirms_a_placed_order() -> None:
    assert confirmation(S.PLACED, already_confirmed=False) == Confirmation(
        Transition(S.PLACED, S.CONFIRMED)
    )


def test_records_a_late_confirmation_without_moving_an_order_already_shipping() -> None:
    assert confirmation(S.PARTIALLY_SHIPPED, already_confirmed=False) == Confirmation(None)


@pytest.mark.parametrize(
    ("status", "already", "code"),
    [
        (S.CANCELLED, False, RefusalCode.ALREADY_CANCELLED),
        (S.REJECTED, False, RefusalCode.ORDER_REJECTED),
        (S.CONFIRMED, True, RefusalCode.ALREADY_CONFIRMED),
    ],
)
def test_refuses_confirmation(status: OrderStatus, already: bool, code: RefusalCode) -> None:
    decision = confirmation(status, already_confirmed=already)
    assert isinstance(decision, Refusal) and decision.code is code


def test_cancels_a_placed_order_when_stock_cannot_be_reserved() -> None:
    assert reservation_failure(S.PLACED) == Transition(S.PLACED, S.CANCELLED)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (S.CANCELLED, RefusalCode.ALREADY_CANCELLED),
        (S.CONFIRMED, RefusalCode.INVALID_TRANSITION),
        (S.SHIPPED, RefusalCode.INVALID_TRANSITION),
    ],
)
def test_ignores_a_reservation_failure_of_an_order_past_placed(
    status: OrderStatus, code: RefusalCode
) -> None:
    decision = reservation_failure(status)
    assert isinstance(decision, Refusal) and decision.code is code


# --- shipments and returns ---------------------------------------------------------------------

ORDERED = {"SKU-A": 2, "SKU-B": 1}


def shipment(
    shipment_id: str,
    lines: dict[str, int] | None,
    *,
    delivered: datetime | None = None,
    cancelled: bool = False,
) -> ShipmentFacts:
    return ShipmentFacts(shipment_id, lines, delivered, cancelled)


def requested(return_id: str) -> ReturnFacts:
    return ReturnFacts(return_id, requested=True, rejected=False, returned_lines=None)


def returned(return_id: str, lines: dict[str, int]) -> ReturnFacts:
    return ReturnFacts(return_id, requested=True, rejected=False, returned_lines=lines)


def test_keeps_the_status_while_nothing_has_shipped() -> None:
    facts = [shipment("s1", None)]
    assert derived_status(S.CONFIRMED, ORDERED, facts, []) is S.CONFIRMED


def test_partially_shipped_while_some_ordered_units_have_not_left() -> None:
    facts = [shipment("s1", {"SKU-A": 2})]
    assert derived_status(S.CONFIRMED, ORDERED, facts, []) is S.PARTIALLY_SHIPPED


def test_shipped_once_shipped_quantities_cover_every_ordered_quantity() -> None:
    facts = [shipment("s1", {"SKU-A": 1}), shipment("s2", {"SKU-A": 1, "SKU-B": 1})]
    assert shipped_quantities(facts) == {"SKU-A": 2, "SKU-B": 1}
    assert derived_status(S.PARTIALLY_SHIPPED, ORDERED, facts, []) is S.SHIPPED


def test_cancelled_shipments_never_count_as_shipped() -> None:
    facts = [shipment("s1", {"SKU-A": 2}), shipment("s2", {"SKU-B": 1}, cancelled=True)]
    assert shipped_quantities(facts) == {"SKU-A": 2}
    assert derived_status(S.CONFIRMED, ORDERED, facts, []) is S.PARTIALLY_SHIPPED


def test_not_delivered_while_something_ordered_has_not_shipped() -> None:
    facts = [shipment("s1", {"SKU-A": 2}, delivered=NOW)]
    assert derived_status(S.PARTIALLY_SHIPPED, ORDERED, facts, []) is S.PARTIALLY_SHIPPED
    assert delivered_at(ORDERED, facts) is None


def test_delivered_when_everything_shipped_and_every_shipment_delivered() -> None:
    earlier = NOW - timedelta(days=1)
    facts = [
        shipment("s1", {"SKU-A": 2}, delivered=earlier),
        shipment("s2", {"SKU-B": 1}, delivered=NOW),
        shipment("s3", {"SKU-B": 1}, cancelled=True),
    ]
    assert derived_status(S.SHIPPED, ORDERED, facts, []) is S.DELIVERED
    assert delivered_at(ORDERED, facts) == NOW


def test_shipped_while_one_shipment_is_still_on_its_way() -> None:
    facts = [shipment("s1", {"SKU-A": 2}, delivered=NOW), shipment("s2", {"SKU-B": 1})]
    assert derived_status(S.SHIPPED, ORDERED, facts, []) is S.SHIPPED


def test_a_delivery_heard_before_its_shipment_left_counts_once_shipped() -> None:
    early = shipment("s1", None, delivered=NOW)
    assert early.status is ShipmentStatus.DELIVERED
    assert derived_status(S.CONFIRMED, {"SKU-A": 2}, [early], []) is S.CONFIRMED
    both = shipment("s1", {"SKU-A": 2}, delivered=NOW)
    assert derived_status(S.CONFIRMED, {"SKU-A": 2}, [both], []) is S.DELIVERED


def test_shipment_status_follows_its_facts() -> None:
    assert shipment("s", None).status is ShipmentStatus.CREATED
    assert shipment("s", {"SKU-A": 1}).status is ShipmentStatus.SHIPPED
    assert shipment("s", {"SKU-A": 1}, delivered=NOW).status is ShipmentStatus.DELIVERED
    assert shipment("s", None, cancelled=True).status is ShipmentStatus.CANCELLED


DELIVERED_FACTS = [shipment("s1", {"SKU-A": 2, "SKU-B": 1}, delivered=NOW)]


def test_return_requested_while_a_request_is_open() -> None:
    assert (
        derived_status(S.DELIVERED, ORDERED, DELIVERED_FACTS, [requested("r1")])
        is S.RETURN_REQUESTED
    )


def test_partially_returned_while_returned_units_fall_short_of_shipped_units() -> None:
    facts = [returned("r1", {"SKU-A": 2})]
    assert (
        derived_status(S.RETURN_REQUESTED, ORDERED, DELIVERED_FACTS, facts) is S.PARTIALLY_RETURNED
    )


def test_returned_once_every_shipped_unit_came_back() -> None:
    facts = [returned("r1", {"SKU-A": 2}), returned("r2", {"SKU-B": 1})]
    assert derived_status(S.PARTIALLY_RETURNED, ORDERED, DELIVERED_FACTS, facts) is S.RETURNED


def test_an_open_request_outweighs_earlier_returns() -> None:
    facts = [returned("r1", {"SKU-A": 2}), requested("r2")]
    assert (
        derived_status(S.PARTIALLY_RETURNED, ORDERED, DELIVERED_FACTS, facts) is S.RETURN_REQUESTED
    )


def test_back_to_delivered_when_the_only_request_is_rejected() -> None:
    rejected = ReturnFacts("r1", requested=True, rejected=True, returned_lines=None)
    assert derived_status(S.RETURN_REQUESTED, ORDERED, DELIVERED_FACTS, [rejected]) is S.DELIVERED


def test_returns_wait_for_the_rest_of_the_order_to_ship() -> None:
    facts = [shipment("s1", {"SKU-A": 2}, delivered=NOW)]
    assert (
        derived_status(S.PARTIALLY_SHIPPED, ORDERED, facts, [requested("r1")])
        is S.PARTIALLY_SHIPPED
    )


# --- completion ------------------------------------------------------------------------------

WINDOW = timedelta(days=30)


@pytest.mark.parametrize(
    ("status", "delivered", "expected"),
    [
        (S.RETURNED, None, FinalStatus.RETURNED),
        (S.DELIVERED, NOW - timedelta(days=30), FinalStatus.DELIVERED),
        (S.PARTIALLY_RETURNED, NOW - timedelta(days=31), FinalStatus.PARTIALLY_RETURNED),
        (S.DELIVERED, NOW - timedelta(days=29), None),
        (S.PARTIALLY_RETURNED, None, None),
        (S.RETURN_REQUESTED, NOW - timedelta(days=40), None),
        (S.SHIPPED, None, None),
        (S.CANCELLED, None, None),
    ],
)
def test_completes_fully_returned_orders_and_delivered_ones_once_the_window_closed(
    status: OrderStatus, delivered: datetime | None, expected: FinalStatus | None
) -> None:
    assert (
        completion(status, delivered_at=delivered, completed=False, now=NOW, return_window=WINDOW)
        is expected
    )


def test_completes_an_order_once_only() -> None:
    assert (
        completion(S.RETURNED, delivered_at=None, completed=True, now=NOW, return_window=WINDOW)
        is None
    )
