"""The shipment's rules, without I/O: its steps, the carrier and price it gets (and gets
again when its address changes), its tracking number and parcels."""

from __future__ import annotations

import pytest

from services.fulfilment.domain import (
    MAX_PACKAGE_WEIGHT_GRAMS,
    PICKUP,
    RATE_TABLE,
    Action,
    AutomaticDelays,
    Line,
    Parcel,
    ShipmentStatus,
    ShippingPolicy,
    automatic_actions,
    default_parcels,
    is_in_warehouse,
    label_parcels,
    lines_per_warehouse,
    refusal_of,
    shipment_id_from,
    steps_of,
    tracking_number,
)

POLICY = ShippingPolicy(currency="EUR", unit_weight_grams=500)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (ShipmentStatus.CREATED, Action.PICK),
        (ShipmentStatus.PICKED, Action.PACK),
        (ShipmentStatus.PACKED, Action.SHIP),
        (ShipmentStatus.SHIPPED, Action.DELIVER),
    ],
)
def test_allows_each_step_from_the_step_before(status: ShipmentStatus, action: Action) -> None:
    assert refusal_of(status, action) is None


@pytest.mark.parametrize(
    ("status", "action", "code"),
    [
        (ShipmentStatus.PICKED, Action.PICK, "already_picked"),
        (ShipmentStatus.PACKED, Action.PICK, "already_picked"),
        (ShipmentStatus.PACKED, Action.PACK, "already_packed"),
        (ShipmentStatus.SHIPPED, Action.SHIP, "already_shipped"),
        (ShipmentStatus.DELIVERED, Action.SHIP, "already_shipped"),
        (ShipmentStatus.DELIVERED, Action.DELIVER, "already_delivered"),
    ],
)
def test_refuses_a_step_already_taken(status: ShipmentStatus, action: Action, code: str) -> None:
    refusal = refusal_of(status, action)
    assert refusal is not None and refusal.code == code


@pytest.mark.parametrize(
    ("status", "action", "code"),
    [
        (ShipmentStatus.CREATED, Action.PACK, "not_picked"),
        (ShipmentStatus.CREATED, Action.SHIP, "not_packed"),
        (ShipmentStatus.PICKED, Action.SHIP, "not_packed"),
        (ShipmentStatus.PACKED, Action.DELIVER, "not_shipped"),
    ],
)
def test_refuses_a_step_that_skips_one(status: ShipmentStatus, action: Action, code: str) -> None:
    refusal = refusal_of(status, action)
    assert refusal is not None and refusal.code == code


@pytest.mark.parametrize("action", list(Action))
def test_refuses_every_step_of_a_cancelled_shipment(action: Action) -> None:
    refusal = refusal_of(ShipmentStatus.CANCELLED, action)
    assert refusal is not None and refusal.code == "shipment_cancelled"


def test_only_shipments_still_in_the_warehouse_can_be_cancelled_or_readdressed() -> None:
    in_warehouse = {status for status in ShipmentStatus if is_in_warehouse(status)}
    assert in_warehouse == {ShipmentStatus.CREATED, ShipmentStatus.PICKED, ShipmentStatus.PACKED}


def test_automatic_mode_picks_and_packs_together_then_ships_then_delivers() -> None:
    assert automatic_actions(ShipmentStatus.CREATED, "ups") == (Action.PICK, Action.PACK)
    assert automatic_actions(ShipmentStatus.PICKED, "ups") == (Action.PACK,)
    assert automatic_actions(ShipmentStatus.PACKED, "ups") == (Action.SHIP,)
    assert automatic_actions(ShipmentStatus.SHIPPED, "ups") == (Action.DELIVER,)
    assert automatic_actions(ShipmentStatus.DELIVERED, "ups") == ()
    assert automatic_actions(ShipmentStatus.CANCELLED, "ups") == ()


def test_a_pickup_handed_over_is_collected_at_once() -> None:
    assert steps_of(Action.SHIP, PICKUP) == (Action.SHIP, Action.DELIVER)
    assert automatic_actions(ShipmentStatus.PACKED, PICKUP) == (Action.SHIP, Action.DELIVER)


@pytest.mark.parametrize(
    ("action", "carrier"),
    [(Action.PICK, PICKUP), (Action.PACK, PICKUP), (Action.SHIP, "laposte")],
)
def test_every_other_command_takes_its_own_step_only(action: Action, carrier: str) -> None:
    assert steps_of(action, carrier) == (action,)


def test_automatic_delays_follow_the_step_to_come_and_end_with_delivery() -> None:
    delays = AutomaticDelays(pack_seconds=1, ship_seconds=2, deliver_seconds=3)
    assert delays.after(ShipmentStatus.CREATED) == 1
    assert delays.after(ShipmentStatus.PICKED) == 1
    assert delays.after(ShipmentStatus.PACKED) == 2
    assert delays.after(ShipmentStatus.SHIPPED) == 3
    assert delays.after(ShipmentStatus.DELIVERED) is None
    assert delays.after(ShipmentStatus.CANCELLED) is None


@pytest.mark.parametrize(
    ("speed", "carrier", "method"),
    [
        ("standard", "laposte", "colissimo"),
        ("express", "dhl", "express"),
        ("next_day", "ups", "next_day"),
    ],
)
def test_chooses_carrier_and_method_by_shipping_speed(
    speed: str, carrier: str, method: str
) -> None:
    quote = POLICY.quote(speed, warehouse_country="FR", destination_country="FR", weight_grams=1)
    assert (quote.carrier, quote.method) == (carrier, method)


def test_domestic_cost_is_base_plus_price_per_started_kilogram() -> None:
    rate = RATE_TABLE["standard"]
    quote = POLICY.quote(
        "standard", warehouse_country="FR", destination_country="FR", weight_grams=2001
    )
    assert not quote.international
    assert quote.cost_minor == rate.domestic_base + 3 * rate.domestic_per_kg
    assert quote.currency == "EUR"


def test_a_light_parcel_pays_for_one_kilogram() -> None:
    rate = RATE_TABLE["express"]
    quote = POLICY.quote(
        "express", warehouse_country="FR", destination_country="FR", weight_grams=1
    )
    assert quote.cost_minor == rate.domestic_base + rate.domestic_per_kg


def test_international_when_destination_differs_from_the_allocation_country() -> None:
    rate = RATE_TABLE["next_day"]
    quote = POLICY.quote(
        "next_day", warehouse_country="DE", destination_country="FR", weight_grams=1000
    )
    assert quote.international
    assert quote.cost_minor == rate.international_base + rate.international_per_kg


def test_domestic_when_the_allocation_country_is_the_destination() -> None:
    rate = RATE_TABLE["standard"]
    quote = POLICY.quote(
        "standard", warehouse_country="DE", destination_country="DE", weight_grams=500
    )
    assert not quote.international and not quote.assumed_domestic
    assert quote.cost_minor == rate.domestic_base + rate.domestic_per_kg


def test_replanning_for_an_address_abroad_makes_a_domestic_shipment_international() -> None:
    rate = RATE_TABLE["express"]
    before = POLICY.quote(
        "express", warehouse_country="FR", destination_country="FR", weight_grams=1500
    )
    after = POLICY.quote(
        "express", warehouse_country="FR", destination_country="BE", weight_grams=1500
    )
    assert (before.international, before.cost_minor) == (
        False,
        rate.domestic_base + 2 * rate.domestic_per_kg,
    )
    assert (after.carrier, after.method) == (before.carrier, before.method)
    assert (after.international, after.cost_minor) == (
        True,
        rate.international_base + 2 * rate.international_per_kg,
    )


def test_an_older_reservation_without_the_warehouse_country_is_planned_as_domestic() -> None:
    rate = RATE_TABLE["standard"]
    quote = POLICY.quote(
        "standard", warehouse_country=None, destination_country="US", weight_grams=500
    )
    assert quote.assumed_domestic and not quote.international
    assert quote.cost_minor == rate.domestic_base + rate.domestic_per_kg


@pytest.mark.parametrize("speed", ["standard", "express", "next_day"])
@pytest.mark.parametrize("warehouse_country", ["FR", None])
def test_a_shipment_without_a_destination_is_a_free_pickup(
    speed: str, warehouse_country: str | None
) -> None:
    quote = POLICY.quote(
        speed, warehouse_country=warehouse_country, destination_country=None, weight_grams=4000
    )
    assert (quote.carrier, quote.method, quote.cost_minor) == (PICKUP, "collect", 0)
    assert not quote.international and not quote.assumed_domestic


def test_weight_is_units_times_unit_weight() -> None:
    assert POLICY.weight_of((Line("A", 2), Line("B", 3))) == 2500


def test_tracking_number_is_the_carrier_prefix_and_the_shipment_id() -> None:
    shipment_id = shipment_id_from("0190abcdef")
    assert tracking_number("ups", shipment_id) == "1Z0190ABCDEF"
    assert tracking_number("laposte", shipment_id) == "LP0190ABCDEF"
    assert tracking_number("dhl", shipment_id) == "JD0190ABCDEF"
    assert tracking_number(PICKUP, shipment_id) == "PU0190ABCDEF"


def test_tracking_numbers_of_different_shipments_differ() -> None:
    first = tracking_number("ups", shipment_id_from("0190abcdef01"))
    second = tracking_number("ups", shipment_id_from("0190abcdef02"))
    assert first != second


def test_groups_allocations_per_warehouse_adding_up_a_repeated_sku() -> None:
    grouped = lines_per_warehouse(
        [("wh-1", "A", 1), ("wh-2", "B", 2), ("wh-1", "C", 3), ("wh-1", "A", 4)]
    )
    assert grouped == {
        "wh-1": (Line("A", 5), Line("C", 3)),
        "wh-2": (Line("B", 2),),
    }


def test_unnamed_parcels_are_numbered_by_position_avoiding_names_taken() -> None:
    parcels = label_parcels([(None, 100), ("pkg_3", 200), (None, 300), ("box", 400)])
    assert parcels == (
        Parcel("pkg_1", 100),
        Parcel("pkg_3", 200),
        Parcel("pkg_4", 300),
        Parcel("box", 400),
    )


def test_default_packing_is_one_parcel_of_the_whole_weight() -> None:
    assert default_parcels(2500) == (Parcel("pkg_1", 2500),)


def test_default_packing_splits_evenly_what_one_parcel_cannot_carry() -> None:
    parcels = default_parcels(2 * MAX_PACKAGE_WEIGHT_GRAMS + 1)
    assert len(parcels) == 3
    assert sum(parcel.weight_grams for parcel in parcels) == 2 * MAX_PACKAGE_WEIGHT_GRAMS + 1
    assert all(parcel.weight_grams <= MAX_PACKAGE_WEIGHT_GRAMS for parcel in parcels)
