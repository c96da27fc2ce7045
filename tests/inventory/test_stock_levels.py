"""How stock levels move: pure arithmetic of reserve, release, commit, restock, adjust,
and when a change raises a low-stock alert."""

from __future__ import annotations

import pytest

from services.inventory.domain import (
    ReservationLine,
    ReservationStatus,
    ShippedUnits,
    StockLevel,
    StockRuleViolation,
    account_for_return,
    account_for_shipment,
    fell_below_threshold,
    status_after_commit,
)


def test_available_is_on_hand_minus_reserved() -> None:
    assert StockLevel(on_hand=10, reserved=3).available == 7


@pytest.mark.parametrize(("on_hand", "reserved"), [(-1, 0), (3, 4), (3, -1)])
def test_a_level_never_reserves_more_than_on_hand(on_hand: int, reserved: int) -> None:
    with pytest.raises(StockRuleViolation):
        StockLevel(on_hand, reserved)


def test_reserving_holds_units_without_moving_them() -> None:
    assert StockLevel(10, 3).reserve(7) == StockLevel(10, 10)
    with pytest.raises(StockRuleViolation):
        StockLevel(10, 3).reserve(8)


def test_releasing_frees_held_units() -> None:
    assert StockLevel(10, 6).release(4) == StockLevel(10, 2)
    with pytest.raises(StockRuleViolation):
        StockLevel(10, 6).release(7)


def test_movements_need_a_positive_quantity() -> None:
    with pytest.raises(StockRuleViolation):
        StockLevel(10, 0).receive(0)


def test_commit_of_held_units_lowers_on_hand_and_reserved_together() -> None:
    level = StockLevel(10, 6)
    shipped = account_for_shipment(4, held_for_order=4, level=level)
    assert shipped == ShippedUnits(from_reservation=4, from_available=0, unaccounted=0)
    assert level.commit(shipped) == StockLevel(6, 2)
    assert level.commit(shipped).available == level.available


def test_shipment_after_release_is_taken_from_free_stock() -> None:
    level = StockLevel(10, 2)
    shipped = account_for_shipment(3, held_for_order=0, level=level)
    assert shipped == ShippedUnits(from_reservation=0, from_available=3, unaccounted=0)
    assert level.commit(shipped) == StockLevel(7, 2)


def test_shipment_beyond_any_stock_is_reported_not_driven_negative() -> None:
    level = StockLevel(5, 4)
    shipped = account_for_shipment(8, held_for_order=2, level=level)
    assert shipped == ShippedUnits(from_reservation=2, from_available=1, unaccounted=5)
    assert level.commit(shipped) == StockLevel(2, 2)


def test_restock_adds_passed_units_and_writes_off_the_rest() -> None:
    units = account_for_return(received=5, restockable=3)
    assert (units.restocked, units.written_off) == (3, 2)
    assert StockLevel(1, 1).receive(units.restocked) == StockLevel(4, 1)


def test_adjustment_never_takes_on_hand_below_reserved() -> None:
    level = StockLevel(10, 6)
    assert level.can_adjust(-4)
    assert level.adjust(-4) == StockLevel(6, 6)
    assert not level.can_adjust(-5)
    with pytest.raises(StockRuleViolation):
        level.adjust(-5)


@pytest.mark.parametrize(
    ("before", "after", "alerts"),
    [
        (StockLevel(10, 4), StockLevel(10, 6), True),  # 6 → 4, threshold 5: crossing
        (StockLevel(10, 5), StockLevel(10, 6), True),  # 5 → 4: from exactly the threshold
        (StockLevel(10, 6), StockLevel(10, 7), False),  # 4 → 3: already below
        (StockLevel(10, 0), StockLevel(10, 4), False),  # 10 → 6: still above
        (StockLevel(10, 6), StockLevel(10, 2), False),  # 4 → 8: going up
    ],
)
def test_low_stock_alerts_once_per_crossing(
    before: StockLevel, after: StockLevel, alerts: bool
) -> None:
    assert fell_below_threshold(before, after, threshold=5) is alerts


def test_threshold_zero_never_alerts() -> None:
    assert not fell_below_threshold(StockLevel(1, 0), StockLevel(1, 1), threshold=0)


def test_reservation_status_follows_what_is_committed() -> None:
    untouched = ReservationLine("wh-1", "A", reserved=3)
    assert status_after_commit([untouched]) is ReservationStatus.RESERVED
    partly = ReservationLine("wh-1", "A", reserved=3, committed=1)
    assert status_after_commit([partly]) is ReservationStatus.PARTIALLY_COMMITTED
    assert partly.open == 2
    done = ReservationLine("wh-1", "A", reserved=3, committed=3)
    assert status_after_commit([done, untouched]) is ReservationStatus.PARTIALLY_COMMITTED
    assert status_after_commit([done]) is ReservationStatus.COMMITTED
