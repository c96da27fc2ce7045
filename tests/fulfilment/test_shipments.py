"""Shipments from reservation to delivery, driven by events and warehouse and carrier
HTTP calls, against the real Kafka broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from contracts.events.common import ShippingSpeed
from contracts.events.fulfilment import (
    Delivered,
    ShipmentCancellationReason,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentPacked,
    ShipmentReplanned,
    Shipped,
)
from services.fulfilment.domain import RATE_TABLE
from tests.fulfilment.harness import (
    BERLIN,
    LYON,
    PARIS,
    Fulfilment,
    address_changed,
    new_order_id,
    order_cancelled,
    running_fulfilment,
    stock_reserved,
)
from tests.infrastructure import Infrastructure
from tests.service_harness import fresh_namespace

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def fulfilment(infrastructure: Infrastructure) -> AsyncIterator[Fulfilment]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fulfilment")
    async with running_fulfilment(infrastructure, names, database_url) as service:
        yield service


async def ship_through_http(fulfilment: Fulfilment, shipment_id: str) -> str:
    for step in ("pick", "pack", "ship"):
        response = await fulfilment.client.post(f"/shipments/{shipment_id}/{step}")
        assert response.status_code == 200, response.text
    tracking_number: str = response.json()["tracking_number"]
    return tracking_number


async def test_creates_one_shipment_per_warehouse_with_carrier_and_cost(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(
        order_id,
        ("wh-paris", "SKU-A", 2),
        ("wh-berlin", "SKU-B", 1),
        ("wh-paris", "SKU-C", 3),
        speed=ShippingSpeed.EXPRESS,
    )
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)

    created = {
        event.warehouse_id: event
        for event in await fulfilment.published(order_id)
        if isinstance(event, ShipmentCreated)
    }
    assert set(created) == {"wh-paris", "wh-berlin"}
    paris, berlin = created["wh-paris"], created["wh-berlin"]
    assert [(line.sku, line.quantity) for line in paris.lines] == [("SKU-A", 2), ("SKU-C", 3)]
    assert [(line.sku, line.quantity) for line in berlin.lines] == [("SKU-B", 1)]
    express = RATE_TABLE["express"]
    assert (paris.carrier, paris.shipping_method) == ("dhl", "express")
    # 5 units of 500 g from France to France; 1 unit from Germany to France.
    assert paris.shipping_cost.amount_minor == express.domestic_base + 3 * express.domestic_per_kg
    assert berlin.shipping_cost.amount_minor == (
        express.international_base + express.international_per_kg
    )
    assert paris.shipping_cost.currency == "EUR"
    assert paris.shipping_address == PARIS

    listed = await fulfilment.shipments(order_id)
    assert {shipment["shipment_id"] for shipment in listed} == {
        paris.shipment_id,
        berlin.shipment_id,
    }
    assert all(shipment["status"] == "created" for shipment in listed)


async def test_shipments_carry_the_customer_notes_and_go_abroad_by_the_warehouse_country(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(
        order_id,
        ("wh-paris", "SKU-A", 1),
        ("wh-berlin", "SKU-B", 1),
        notes="Leave it with the concierge",
    )
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)

    created = {
        event.warehouse_id: event
        for event in await fulfilment.published(order_id)
        if isinstance(event, ShipmentCreated)
    }
    assert {warehouse: event.international for warehouse, event in created.items()} == {
        "wh-paris": False,
        "wh-berlin": True,
    }
    assert {event.notes for event in created.values()} == {"Leave it with the concierge"}
    berlin = await fulfilment.shipment(created["wh-berlin"].shipment_id)
    assert (berlin["warehouse_country"], berlin["international"]) == ("DE", True)
    assert berlin["notes"] == "Leave it with the concierge"
    listed = await fulfilment.shipment_in(order_id, "wh-paris")
    assert (listed["warehouse_country"], listed["international"]) == ("FR", False)
    assert listed["notes"] == "Leave it with the concierge"


async def test_a_reservation_naming_no_warehouse_country_is_planned_as_domestic(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(
        order_id, ("wh-berlin", "SKU-A", 1), ("wh-berlin", "SKU-B", 1), countries={}
    )
    with capture_logs() as logs:
        await fulfilment.publish(reserved)
        await fulfilment.handled(reserved)

    [created] = await fulfilment.published(order_id)
    assert isinstance(created, ShipmentCreated)
    standard = RATE_TABLE["standard"]
    assert created.international is False
    # Two units of 500 g: one started kilogram.
    assert created.shipping_cost.amount_minor == standard.domestic_base + standard.domestic_per_kg
    shipment = await fulfilment.shipment(created.shipment_id)
    assert (shipment["warehouse_country"], shipment["international"]) == (None, False)
    assert shipment["notes"] is None
    assumed = [
        entry
        for entry in logs
        if entry.get("shipment_id") == created.shipment_id
        and "planned as domestic" in entry["event"]
    ]
    assert len(assumed) == 1, "logged once for the shipment, not once per allocation"


async def test_an_order_without_an_address_is_a_pickup_handed_over_and_collected_at_once(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(
        order_id, ("wh-paris", "SKU-A", 4), address=None, speed=ShippingSpeed.NEXT_DAY
    )
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)

    [created] = await fulfilment.published(order_id)
    assert isinstance(created, ShipmentCreated)
    assert (created.carrier, created.shipping_method) == ("pickup", "collect")
    assert created.shipping_cost.amount_minor == 0
    assert (created.international, created.shipping_address) == (False, None)
    assert (await fulfilment.shipment(created.shipment_id))["shipping_address"] is None

    tracking_number = await ship_through_http(fulfilment, created.shipment_id)

    assert tracking_number.startswith("PU")
    shipment = await fulfilment.shipment(created.shipment_id)
    assert shipment["status"] == "delivered"
    assert shipment["delivered_at"] == shipment["shipped_at"]
    assert shipment["next_step_at"] is None
    events = await fulfilment.published(order_id)
    assert [type(event) for event in events] == [
        ShipmentCreated,
        ShipmentPacked,
        Shipped,
        Delivered,
    ]
    reported = await fulfilment.client.post(
        "/carrier/tracking", json={"tracking_number": tracking_number, "status": "delivered"}
    )
    assert reported.status_code == 200
    assert reported.json()["delivered_at"] == shipment["delivered_at"]


async def test_warehouse_steps_emit_packed_then_shipped_and_refuse_out_of_order(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 2))
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)
    shipment_id = (await fulfilment.shipments(order_id))[0]["shipment_id"]
    client = fulfilment.client

    too_early = await client.post(f"/shipments/{shipment_id}/pack")
    assert too_early.status_code == 409 and too_early.json()["code"] == "not_picked"
    assert (await client.post(f"/shipments/{shipment_id}/pick")).status_code == 200
    repeated = await client.post(f"/shipments/{shipment_id}/pick")
    assert repeated.status_code == 409 and repeated.json()["code"] == "already_picked"
    shipping_unpacked = await client.post(f"/shipments/{shipment_id}/ship")
    assert shipping_unpacked.status_code == 409
    assert shipping_unpacked.json()["code"] == "not_packed"

    duplicate_ids = await client.post(
        f"/shipments/{shipment_id}/pack",
        json={"packages": [{"package_id": "box", "weight_grams": 1}] * 2},
    )
    assert duplicate_ids.status_code == 422
    packed = await client.post(
        f"/shipments/{shipment_id}/pack",
        json={"packages": [{"weight_grams": 700}, {"package_id": "box-7", "weight_grams": 450}]},
    )
    assert packed.status_code == 200, packed.text
    assert packed.json()["packages"] == [
        {"package_id": "pkg_1", "weight_grams": 700},
        {"package_id": "box-7", "weight_grams": 450},
    ]
    shipped = await client.post(f"/shipments/{shipment_id}/ship")
    assert shipped.status_code == 200
    assert shipped.json()["status"] == "shipped"
    assert shipped.json()["tracking_number"].startswith("LP")
    again = await client.post(f"/shipments/{shipment_id}/ship")
    assert again.status_code == 409 and again.json()["code"] == "already_shipped"

    events = await fulfilment.published(order_id)
    assert [type(event) for event in events] == [ShipmentCreated, ShipmentPacked, Shipped]
    packed_event, shipped_event = events[1], events[2]
    assert isinstance(packed_event, ShipmentPacked) and isinstance(shipped_event, Shipped)
    assert [(p.package_id, p.weight_grams) for p in packed_event.packages] == [
        ("pkg_1", 700),
        ("box-7", 450),
    ]
    assert shipped_event.tracking_number == shipped.json()["tracking_number"]
    assert shipped_event.warehouse_id == "wh-paris"
    assert [(line.sku, line.quantity) for line in shipped_event.lines] == [("SKU-A", 2)]


async def test_packing_without_a_list_makes_one_parcel_weighed_by_units(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 3))
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)
    shipment_id = (await fulfilment.shipments(order_id))[0]["shipment_id"]
    await fulfilment.client.post(f"/shipments/{shipment_id}/pick")

    packed = await fulfilment.client.post(f"/shipments/{shipment_id}/pack")

    assert packed.status_code == 200
    assert packed.json()["packages"] == [{"package_id": "pkg_1", "weight_grams": 1500}]


async def test_unknown_shipment_is_not_found(fulfilment: Fulfilment) -> None:
    for step in ("pick", "pack", "ship"):
        response = await fulfilment.client.post(f"/shipments/shp_nope/{step}")
        assert response.status_code == 404
        assert response.json()["code"] == "shipment_not_found"
    assert (await fulfilment.client.get("/shipments/shp_nope")).status_code == 404
    assert await fulfilment.shipments("ord_never_seen") == []


async def test_carrier_delivery_is_reported_once(fulfilment: Fulfilment) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 1), speed=ShippingSpeed.NEXT_DAY)
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)
    shipment_id = (await fulfilment.shipments(order_id))[0]["shipment_id"]
    tracking_number = await ship_through_http(fulfilment, shipment_id)
    assert tracking_number.startswith("1Z")
    update = {
        "tracking_number": tracking_number,
        "status": "delivered",
        "occurred_at": "2026-11-23T10:15:00+01:00",
    }

    first = await fulfilment.client.post("/carrier/tracking", json=update)
    repeat = await fulfilment.client.post("/carrier/tracking", json=update)

    assert first.status_code == 200 and first.json()["status"] == "delivered"
    assert repeat.status_code == 200 and repeat.json() == first.json()
    unknown = await fulfilment.client.post(
        "/carrier/tracking", json={**update, "tracking_number": "1ZUNKNOWN"}
    )
    assert unknown.status_code == 404
    not_a_delivery = await fulfilment.client.post(
        "/carrier/tracking", json={**update, "status": "lost"}
    )
    assert not_a_delivery.status_code == 422
    deliveries = [
        event for event in await fulfilment.published(order_id) if isinstance(event, Delivered)
    ]
    assert len(deliveries) == 1
    assert deliveries[0].tracking_number == tracking_number
    assert deliveries[0].delivered_at.isoformat() == "2026-11-23T09:15:00+00:00"


async def test_order_cancelled_stops_unshipped_shipments_and_their_steps(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 1), ("wh-berlin", "SKU-B", 1))
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)
    shipped = await fulfilment.shipment_in(order_id, "wh-paris")
    tracking_number = await ship_through_http(fulfilment, shipped["shipment_id"])
    open_one = await fulfilment.shipment_in(order_id, "wh-berlin")
    await fulfilment.client.post(f"/shipments/{open_one['shipment_id']}/pick")

    cancelled = order_cancelled(order_id)
    await fulfilment.publish(cancelled)
    await fulfilment.handled(cancelled)

    cancellations = [
        event
        for event in await fulfilment.published(order_id)
        if isinstance(event, ShipmentCancelled)
    ]
    assert [(event.shipment_id, event.reason) for event in cancellations] == [
        (open_one["shipment_id"], ShipmentCancellationReason.ORDER_CANCELLED)
    ]
    assert (await fulfilment.shipment_in(order_id, "wh-paris"))["status"] == "shipped"
    assert (await fulfilment.shipment_in(order_id, "wh-berlin"))["status"] == "cancelled"
    for step in ("pick", "pack", "ship"):
        refused = await fulfilment.client.post(f"/shipments/{open_one['shipment_id']}/{step}")
        assert refused.status_code == 409
        assert refused.json()["code"] == "shipment_cancelled"
    delivered = await fulfilment.client.post(
        "/carrier/tracking", json={"tracking_number": tracking_number, "status": "delivered"}
    )
    assert delivered.status_code == 200


async def test_order_cancelled_before_stock_reserved_creates_no_shipment(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    cancelled = order_cancelled(order_id)
    await fulfilment.publish(cancelled)
    await fulfilment.handled(cancelled)

    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 1))
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)

    assert await fulfilment.shipments(order_id) == []
    assert await fulfilment.published(order_id) == []


async def test_address_change_applies_to_unshipped_shipments_only(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 1), ("wh-berlin", "SKU-B", 1))
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)
    shipped = await fulfilment.shipment_in(order_id, "wh-paris")
    await ship_through_http(fulfilment, shipped["shipment_id"])

    changed = address_changed(order_id, LYON)
    await fulfilment.publish(changed)
    await fulfilment.handled(changed)

    assert (await fulfilment.shipment_in(order_id, "wh-paris"))["shipping_address"]["city"] == (
        "Paris"
    )
    assert (await fulfilment.shipment_in(order_id, "wh-berlin"))["shipping_address"]["city"] == (
        "Lyon"
    )
    replanned = [
        event
        for event in await fulfilment.published(order_id)
        if isinstance(event, ShipmentReplanned)
    ]
    assert [(event.warehouse_id, event.shipping_address) for event in replanned] == [
        ("wh-berlin", LYON)
    ]


async def test_address_change_replans_each_unshipped_shipment_and_says_so(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(
        order_id, ("wh-paris", "SKU-A", 1), ("wh-berlin", "SKU-B", 3), speed=ShippingSpeed.EXPRESS
    )
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)
    await fulfilment.client.post(
        f"/shipments/{(await fulfilment.shipment_in(order_id, 'wh-paris'))['shipment_id']}/pick"
    )

    changed = address_changed(order_id, BERLIN)
    await fulfilment.publish(changed)
    await fulfilment.handled(changed)

    express = RATE_TABLE["express"]
    replanned = {
        event.warehouse_id: event
        for event in await fulfilment.published(order_id)
        if isinstance(event, ShipmentReplanned)
    }
    paris, berlin = replanned["wh-paris"], replanned["wh-berlin"]
    # France to Germany now: domestic becomes international.
    assert (paris.carrier, paris.shipping_method, paris.international) == ("dhl", "express", True)
    assert paris.shipping_cost.amount_minor == (
        express.international_base + express.international_per_kg
    )
    assert paris.previous_carrier == "dhl"
    assert paris.previous_shipping_cost.amount_minor == (
        express.domestic_base + express.domestic_per_kg
    )
    # Germany to Germany now: international becomes domestic (3 units: 2 started kg).
    assert berlin.international is False
    assert berlin.shipping_cost.amount_minor == express.domestic_base + 2 * express.domestic_per_kg
    assert berlin.previous_shipping_cost.amount_minor == (
        express.international_base + 2 * express.international_per_kg
    )
    assert berlin.shipping_address == BERLIN
    stored = await fulfilment.shipment(paris.shipment_id)
    assert (stored["status"], stored["international"]) == ("picked", True)
    assert stored["shipping_cost"]["amount_minor"] == paris.shipping_cost.amount_minor
    assert stored["shipping_address"]["city"] == "Berlin"


async def test_an_address_given_to_a_pickup_turns_it_into_a_delivery(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    reserved = stock_reserved(order_id, ("wh-berlin", "SKU-A", 1), address=None)
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)

    changed = address_changed(order_id, PARIS)
    await fulfilment.publish(changed)
    await fulfilment.handled(changed)

    [replanned] = [
        event
        for event in await fulfilment.published(order_id)
        if isinstance(event, ShipmentReplanned)
    ]
    standard = RATE_TABLE["standard"]
    assert (replanned.previous_carrier, replanned.previous_shipping_cost.amount_minor) == (
        "pickup",
        0,
    )
    assert (replanned.carrier, replanned.shipping_method, replanned.international) == (
        "laposte",
        "colissimo",
        True,
    )
    assert replanned.shipping_cost.amount_minor == (
        standard.international_base + standard.international_per_kg
    )
    tracking_number = await ship_through_http(fulfilment, replanned.shipment_id)
    assert tracking_number.startswith("LP")
    assert (await fulfilment.shipment(replanned.shipment_id))["status"] == "shipped"


async def test_address_changed_before_stock_reserved_addresses_the_new_shipments(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    changed = address_changed(order_id, LYON)
    await fulfilment.publish(changed)
    await fulfilment.handled(changed)

    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 1))
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)

    created = [
        event
        for event in await fulfilment.published(order_id)
        if isinstance(event, ShipmentCreated)
    ]
    assert [event.shipping_address for event in created] == [LYON]


async def test_shipments_reserved_after_a_change_are_planned_for_the_new_address(
    fulfilment: Fulfilment,
) -> None:
    order_id = new_order_id()
    changed = address_changed(order_id, BERLIN)
    await fulfilment.publish(changed)
    await fulfilment.handled(changed)

    # Reserved for the address the order had before, or for none (collect in store).
    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 1), address=None)
    await fulfilment.publish(reserved)
    await fulfilment.handled(reserved)

    [created] = await fulfilment.published(order_id)
    assert isinstance(created, ShipmentCreated)
    standard = RATE_TABLE["standard"]
    assert (created.shipping_address, created.carrier, created.international) == (
        BERLIN,
        "laposte",
        True,
    )
    assert created.shipping_cost.amount_minor == (
        standard.international_base + standard.international_per_kg
    )
