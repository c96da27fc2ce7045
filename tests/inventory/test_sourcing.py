"""Where an order's units come from: pure sourcing rules."""

from __future__ import annotations

import pytest

from services.inventory.domain import (
    COUNTRY_CENTROIDS,
    Allocation,
    Location,
    Shortage,
    Shortfall,
    SourcingPlan,
    WarehouseStock,
    distance_km,
    requested_quantities,
    source,
)

PARIS = Location(48.86, 2.35)
BERLIN = Location(52.52, 13.40)
MADRID = Location(40.42, -3.70)
NEW_JERSEY = Location(40.06, -74.41)


def warehouse(warehouse_id: str, location: Location, **available: int) -> WarehouseStock:
    return WarehouseStock(warehouse_id, location, {sku.upper(): n for sku, n in available.items()})


def plan(outcome: SourcingPlan | Shortfall) -> SourcingPlan:
    assert isinstance(outcome, SourcingPlan), outcome
    return outcome


def test_haversine_distance_paris_berlin_is_about_880_km() -> None:
    assert distance_km(PARIS, BERLIN) == pytest.approx(878, abs=5)
    assert distance_km(PARIS, PARIS) == 0


def test_country_table_covers_the_eu_and_the_other_served_countries() -> None:
    eu = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
    assert set(eu.split()) | {"GB", "US", "CA", "CH", "NO"} <= set(COUNTRY_CENTROIDS)


def test_prefers_the_nearest_single_warehouse_that_fills_every_line() -> None:
    outcome = source(
        {"A": 2, "B": 1},
        [
            warehouse("wh-berlin", BERLIN, a=5, b=5),
            warehouse("wh-madrid", MADRID, a=5, b=5),
            warehouse("wh-paris", PARIS, a=5),
        ],
        "ES",
    )
    assert plan(outcome).allocations == (
        Allocation("wh-madrid", "A", 2),
        Allocation("wh-madrid", "B", 1),
    )


def test_a_single_warehouse_beats_a_nearer_split() -> None:
    outcome = source(
        {"A": 1, "B": 1},
        [
            warehouse("wh-paris", PARIS, a=1),
            warehouse("wh-madrid", MADRID, b=1),
            warehouse("wh-us", NEW_JERSEY, a=1, b=1),
        ],
        "FR",
    )
    assert plan(outcome).warehouse_ids == ("wh-us",)


def test_splits_over_the_fewest_warehouses_when_none_fills_the_order() -> None:
    outcome = source(
        {"A": 4, "B": 4, "C": 4},
        [
            warehouse("wh-1", PARIS, a=4),
            warehouse("wh-2", PARIS, b=4),
            warehouse("wh-big", NEW_JERSEY, a=4, b=4),
            warehouse("wh-3", PARIS, c=4),
        ],
        "FR",
    )
    assert plan(outcome).allocations == (
        Allocation("wh-3", "C", 4),
        Allocation("wh-big", "A", 4),
        Allocation("wh-big", "B", 4),
    )


def test_one_sku_may_come_from_several_warehouses() -> None:
    outcome = source(
        {"A": 7},
        [warehouse("wh-paris", PARIS, a=4), warehouse("wh-berlin", BERLIN, a=4)],
        "FR",
    )
    assert plan(outcome).allocations == (
        Allocation("wh-berlin", "A", 3),
        Allocation("wh-paris", "A", 4),
    )


def test_equal_coverage_goes_to_the_nearer_warehouse() -> None:
    outcome = source(
        {"A": 3, "B": 3},
        [
            warehouse("wh-berlin", BERLIN, a=3),
            warehouse("wh-madrid", MADRID, a=3),
            warehouse("wh-paris", PARIS, b=3),
        ],
        "ES",
    )
    assert plan(outcome).warehouse_ids == ("wh-madrid", "wh-paris")


def test_unknown_destination_breaks_ties_by_warehouse_id() -> None:
    warehouses = [warehouse("wh-b", PARIS, a=5), warehouse("wh-a", NEW_JERSEY, a=5)]
    assert plan(source({"A": 1}, warehouses, "JP")).warehouse_ids == ("wh-a",)
    assert plan(source({"A": 1}, warehouses, "FR")).warehouse_ids == ("wh-b",)


def test_without_a_destination_the_first_warehouse_by_id_that_fills_the_order_wins() -> None:
    warehouses = [
        warehouse("wh-c", PARIS, a=5),
        warehouse("wh-b", NEW_JERSEY, a=5),
        warehouse("wh-a", MADRID, a=1),
    ]
    assert plan(source({"A": 2}, warehouses, None)).warehouse_ids == ("wh-b",)


def test_without_a_destination_a_split_breaks_coverage_ties_by_warehouse_id() -> None:
    outcome = source(
        {"A": 3, "B": 3},
        [
            warehouse("wh-c", PARIS, a=3),
            warehouse("wh-b", BERLIN, a=3),
            warehouse("wh-a", MADRID, b=3),
        ],
        None,
    )
    assert plan(outcome).allocations == (
        Allocation("wh-a", "B", 3),
        Allocation("wh-b", "A", 3),
    )


def test_rejects_reservation_when_any_line_is_short() -> None:
    outcome = source(
        {"A": 1, "B": 5},
        [warehouse("wh-paris", PARIS, a=10, b=2), warehouse("wh-berlin", BERLIN, b=2)],
        "FR",
    )
    assert outcome == Shortfall((Shortage("B", requested=5, available=4),))


def test_reports_every_short_sku_with_total_available() -> None:
    outcome = source(
        {"A": 3, "B": 1, "C": 2},
        [warehouse("wh-paris", PARIS, a=1, b=1), warehouse("wh-berlin", BERLIN, a=1)],
        "FR",
    )
    assert outcome == Shortfall(
        (Shortage("A", requested=3, available=2), Shortage("C", requested=2, available=0))
    )


def test_negative_availability_counts_as_nothing() -> None:
    outcome = source({"A": 1}, [warehouse("wh-paris", PARIS, a=-3)], "FR")
    assert outcome == Shortfall((Shortage("A", requested=1, available=0),))


def test_lines_of_the_same_sku_are_added_up() -> None:
    assert requested_quantities([("A", 2), ("B", 1), ("A", 3)]) == {"A": 5, "B": 1}
