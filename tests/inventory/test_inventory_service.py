"""The inventory service on the real broker and database: events in, events and HTTP out.

One service runs for the module; every test works on SKUs and orders of its own, so
tests share warehouses but never each other's stock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Event, OrderEvent
from contracts.events.inventory import (
    LowStockDetected,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockRestocked,
)
from contracts.wire import decode, header_map
from services.inventory.app import InventorySettings, create_app
from services.kit.tables import inbox, outbox
from services.kit.topics import TopicNames
from tests.infrastructure import Infrastructure
from tests.inventory.factories import (
    order_cancelled,
    order_placed,
    return_received,
    shipped,
    unique,
)
from tests.kafka_tools import eventually, read_all
from tests.service_harness import (
    events_on,
    fresh_namespace,
    publish_events,
    running_service,
    settings_environment,
)

pytestmark = pytest.mark.integration

INVENTORY_TOPIC = "oms.inventory.v1"
WAREHOUSES = {
    "wh-paris": {"name": "Paris", "country": "FR", "latitude": 48.86, "longitude": 2.35},
    "wh-berlin": {"name": "Berlin", "country": "DE", "latitude": 52.52, "longitude": 13.40},
    "wh-madrid": {"name": "Madrid", "country": "ES", "latitude": 40.42, "longitude": -3.70},
}
DEFAULT_THRESHOLD = 2

E = TypeVar("E", bound=Event)


@dataclass
class Scene:
    infrastructure: Infrastructure
    names: TopicNames
    client: httpx.AsyncClient
    engine: AsyncEngine

    async def handled(self, *events: Event) -> None:
        """Waits until the service has consumed these events (their ids are in its inbox)
        and published all it emitted (its outbox is drained): for tests whose point is
        what was not emitted."""
        wanted = [event.event_id for event in events]

        async def settled() -> bool:
            async with self.engine.connect() as connection:
                consumed = await connection.scalar(
                    select(func.count()).select_from(inbox).where(inbox.c.event_id.in_(wanted))
                )
                unsent = await connection.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )
            return consumed == len(wanted) and unsent == 0

        await eventually(settled, timeout=30)

    async def publish(self, *events: Event) -> None:
        await publish_events(self.infrastructure, self.names, *events)

    async def emitted(
        self, kind: type[E], where: Callable[[E], bool], *, count: int = 1, timeout: float = 30
    ) -> list[E]:
        """The inventory events of `kind` satisfying `where`, once at least `count` are out."""
        found: list[E] = []

        async def arrived() -> bool:
            nonlocal found
            events = await events_on(
                self.infrastructure, self.names, INVENTORY_TOPIC, expect=1, timeout=3
            )
            found = [event for event in events if isinstance(event, kind) and where(event)]
            return len(found) >= count

        await eventually(arrived, timeout=timeout, interval=0.5)
        return found

    async def for_order(self, kind: type[E], order_id: str, *, count: int = 1) -> list[E]:
        return await self.emitted(
            kind,
            lambda event: isinstance(event, OrderEvent) and event.order_id == order_id,
            count=count,
        )

    async def all_for_order(self, order_id: str) -> list[Event]:
        events = await events_on(
            self.infrastructure, self.names, INVENTORY_TOPIC, expect=1, timeout=3
        )
        return [
            event
            for event in events
            if isinstance(event, OrderEvent) and event.order_id == order_id
        ]

    async def receive(self, sku: str, warehouse_id: str, quantity: int) -> None:
        answer = await self.client.post(
            "/stock/receipts",
            json={
                "sku": sku,
                "warehouse_id": warehouse_id,
                "quantity": quantity,
                "reference": unique("po"),
            },
        )
        assert answer.status_code == 201, answer.text

    async def levels(self, sku: str) -> dict[str, tuple[int, int]]:
        """warehouse → (on_hand, reserved); and checks the ledger adds up to the same."""
        answer = await self.client.get(f"/stock/{sku}")
        assert answer.status_code == 200, answer.text
        levels = {
            row["warehouse_id"]: (row["on_hand"], row["reserved"])
            for row in answer.json()["warehouses"]
        }
        ledger = (await self.client.get("/ledger", params={"sku": sku})).json()["movements"]
        from_ledger: dict[str, tuple[int, int]] = {}
        for movement in ledger:
            on_hand, reserved = from_ledger.get(movement["warehouse_id"], (0, 0))
            from_ledger[movement["warehouse_id"]] = (
                on_hand + movement["on_hand_change"],
                reserved + movement["reserved_change"],
            )
        assert from_ledger == levels, "the ledger does not account for every unit"
        return levels

    async def reservation(self, order_id: str) -> dict[str, Any]:
        answer = await self.client.get(f"/reservations/{order_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest_asyncio.fixture(scope="module")
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("inventory")
    settings = InventorySettings(
        **settings_environment(infrastructure, names, database_url),
        default_low_stock_threshold=DEFAULT_THRESHOLD,
    )
    app = create_app(settings)
    async with running_service(app) as client:
        for warehouse_id, body in WAREHOUSES.items():
            answer = await client.put(f"/warehouses/{warehouse_id}", json=body)
            assert answer.status_code == 201, answer.text
        yield Scene(infrastructure, names, client, app.state.runtime.engine)


# --- Reservation -----------------------------------------------------------------------


async def test_order_is_reserved_in_the_nearest_warehouse_that_has_everything(
    scene: Scene,
) -> None:
    sku_a, sku_b = unique("A"), unique("B")
    for warehouse_id in ("wh-paris", "wh-berlin"):
        await scene.receive(sku_a, warehouse_id, 10)
        await scene.receive(sku_b, warehouse_id, 10)
    order = order_placed(unique("ord"), {sku_a: 2, sku_b: 1}, country="DE", locale="en")

    await scene.publish(order)

    [reserved] = await scene.for_order(StockReserved, order.order_id)
    assert {(a.warehouse_id, a.sku, a.quantity) for a in reserved.allocations} == {
        ("wh-berlin", sku_a, 2),
        ("wh-berlin", sku_b, 1),
    }
    assert reserved.shipping_address == order.shipping_address
    assert reserved.shipping_speed == order.shipping_speed
    assert reserved.customer_locale == "en"
    assert await scene.levels(sku_a) == {"wh-berlin": (10, 2), "wh-paris": (10, 0)}
    reservation = await scene.reservation(order.order_id)
    assert reservation["reservation_id"] == reserved.reservation_id
    assert reservation["status"] == "reserved"


async def test_reservation_names_each_warehouse_country_and_carries_the_customer_notes(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 2)
    await scene.receive(sku, "wh-berlin", 2)
    order = order_placed(unique("ord"), {sku: 3}, country="FR", notes="Ring twice, please")

    await scene.publish(order)

    [reserved] = await scene.for_order(StockReserved, order.order_id)
    assert sorted(
        (a.warehouse_id, a.warehouse_country, a.quantity) for a in reserved.allocations
    ) == [
        ("wh-berlin", "DE", 1),
        ("wh-paris", "FR", 2),
    ]
    assert reserved.notes == "Ring twice, please"


async def test_allocations_name_the_country_the_warehouse_record_has_now(scene: Scene) -> None:
    warehouse_id, sku = unique("wh"), unique("A")
    body = {"name": "Border", "country": "NO", "latitude": 59.3, "longitude": 11.6}
    assert (await scene.client.put(f"/warehouses/{warehouse_id}", json=body)).status_code == 201
    await scene.receive(sku, warehouse_id, 2)
    before = order_placed(unique("ord"), {sku: 1})
    await scene.publish(before)
    [reserved_before] = await scene.for_order(StockReserved, before.order_id)

    moved = await scene.client.put(f"/warehouses/{warehouse_id}", json={**body, "country": "SE"})
    assert moved.status_code == 200
    after = order_placed(unique("ord"), {sku: 1})
    await scene.publish(after)
    [reserved_after] = await scene.for_order(StockReserved, after.order_id)

    assert [a.warehouse_country for a in reserved_before.allocations] == ["NO"]
    assert [a.warehouse_country for a in reserved_after.allocations] == ["SE"]


async def test_an_order_collected_in_store_is_sourced_without_a_destination(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    await scene.receive(sku, "wh-madrid", 5)
    order = order_placed(unique("ord"), {sku: 2}, country=None)

    await scene.publish(order)

    [reserved] = await scene.for_order(StockReserved, order.order_id)
    assert reserved.shipping_address is None
    # No distance to rank by: the first warehouse by id that fills the order.
    assert [(a.warehouse_id, a.warehouse_country, a.quantity) for a in reserved.allocations] == [
        ("wh-madrid", "ES", 2)
    ]
    assert await scene.levels(sku) == {"wh-madrid": (5, 2), "wh-paris": (5, 0)}


async def test_an_order_no_single_warehouse_can_fill_is_split_over_warehouses(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 3)
    await scene.receive(sku, "wh-madrid", 3)
    order = order_placed(unique("ord"), {sku: 5}, country="ES")

    await scene.publish(order)

    [reserved] = await scene.for_order(StockReserved, order.order_id)
    assert sorted((a.warehouse_id, a.quantity) for a in reserved.allocations) == [
        ("wh-madrid", 3),
        ("wh-paris", 2),
    ]
    assert await scene.levels(sku) == {"wh-madrid": (3, 3), "wh-paris": (3, 2)}


async def test_order_short_on_any_line_reserves_nothing_and_reports_every_shortage(
    scene: Scene,
) -> None:
    plenty, scarce, absent = unique("A"), unique("B"), unique("C")
    await scene.receive(plenty, "wh-paris", 10)
    await scene.receive(scarce, "wh-paris", 1)
    await scene.receive(scarce, "wh-berlin", 1)
    order = order_placed(unique("ord"), {plenty: 2, scarce: 3, absent: 1})

    await scene.publish(order)

    [failed] = await scene.for_order(StockReservationFailed, order.order_id)
    assert {(s.sku, s.requested, s.available) for s in failed.shortages} == {
        (scarce, 3, 2),
        (absent, 1, 0),
    }
    assert await scene.levels(plenty) == {"wh-paris": (10, 0)}
    reservation = await scene.reservation(order.order_id)
    assert reservation["status"] == "failed"
    assert reservation["lines"] == []
    assert not [
        e for e in await scene.all_for_order(order.order_id) if isinstance(e, StockReserved)
    ]


async def test_the_same_order_placed_twice_is_reserved_once(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 10)
    order_id = unique("ord")
    # Two distinct events (a re-emission, not a redelivery: the inbox would catch that).
    first, second = order_placed(order_id, {sku: 4}), order_placed(order_id, {sku: 4})
    cancelled = order_cancelled(order_id)

    await scene.publish(first, second, cancelled)
    await scene.handled(first, second, cancelled)

    events = await scene.all_for_order(order_id)
    assert [type(event) for event in events] == [StockReserved, StockReleased]
    assert await scene.levels(sku) == {"wh-paris": (10, 0)}


# --- Cancellation ----------------------------------------------------------------------


async def test_cancellation_releases_what_the_order_holds(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 2)
    await scene.receive(sku, "wh-berlin", 2)
    order = order_placed(unique("ord"), {sku: 3})
    await scene.publish(order)
    [reserved] = await scene.for_order(StockReserved, order.order_id)

    await scene.publish(order_cancelled(order.order_id))

    [released] = await scene.for_order(StockReleased, order.order_id)
    assert released.reservation_id == reserved.reservation_id
    assert set(released.allocations) == set(reserved.allocations)
    assert {(a.warehouse_id, a.warehouse_country) for a in released.allocations} == {
        ("wh-paris", "FR"),
        ("wh-berlin", "DE"),
    }
    assert await scene.levels(sku) == {"wh-berlin": (2, 0), "wh-paris": (2, 0)}
    reservation = await scene.reservation(order.order_id)
    assert (reservation["status"], reservation["cancelled"]) == ("released", True)
    assert all(line["released"] == line["reserved"] for line in reservation["lines"])


async def test_cancellation_of_an_order_that_holds_nothing_releases_nothing(
    scene: Scene,
) -> None:
    sku = unique("A")
    order = order_placed(unique("ord"), {sku: 1})
    await scene.publish(order)
    await scene.for_order(StockReservationFailed, order.order_id)

    cancelled = order_cancelled(order.order_id)

    await scene.publish(cancelled)
    await scene.handled(cancelled)

    events = await scene.all_for_order(order.order_id)
    assert [type(event) for event in events] == [StockReservationFailed]
    assert (await scene.reservation(order.order_id))["cancelled"] is True


async def test_an_order_cancelled_before_it_is_placed_is_never_reserved(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    order = order_placed(unique("ord"), {sku: 1})
    cancelled = order_cancelled(order.order_id)

    await scene.publish(cancelled, order)
    await scene.handled(cancelled, order)

    assert (await scene.client.get(f"/reservations/{order.order_id}")).status_code == 404
    assert await scene.all_for_order(order.order_id) == []
    assert await scene.levels(sku) == {"wh-paris": (5, 0)}


# --- Shipment --------------------------------------------------------------------------


async def test_shipments_commit_held_units_out_of_on_hand_and_reserved(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 10)
    order = order_placed(unique("ord"), {sku: 3})
    await scene.publish(order)
    await scene.for_order(StockReserved, order.order_id)

    await scene.publish(shipped(order.order_id, "wh-paris", {sku: 1}))
    [first] = await scene.for_order(StockCommitted, order.order_id)
    assert (await scene.reservation(order.order_id))["status"] == "partially_committed"

    await scene.publish(shipped(order.order_id, "wh-paris", {sku: 2}))
    committed = await scene.for_order(StockCommitted, order.order_id, count=2)

    assert [(line.sku, line.quantity) for event in committed for line in event.lines] == [
        (sku, 1),
        (sku, 2),
    ]
    assert first.warehouse_id == "wh-paris"
    assert await scene.levels(sku) == {"wh-paris": (7, 0)}
    assert (await scene.reservation(order.order_id))["status"] == "committed"


async def test_shipment_that_raced_a_cancellation_is_taken_from_free_stock(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 10)
    order = order_placed(unique("ord"), {sku: 2})
    await scene.publish(order)
    await scene.for_order(StockReserved, order.order_id)
    await scene.publish(order_cancelled(order.order_id))
    await scene.for_order(StockReleased, order.order_id)

    await scene.publish(shipped(order.order_id, "wh-paris", {sku: 2}))

    [committed] = await scene.for_order(StockCommitted, order.order_id)
    assert [(line.sku, line.quantity) for line in committed.lines] == [(sku, 2)]
    assert await scene.levels(sku) == {"wh-paris": (8, 0)}
    assert (await scene.reservation(order.order_id))["status"] == "released"


async def test_the_same_shipment_reported_twice_is_committed_once(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 10)
    order = order_placed(unique("ord"), {sku: 2})
    await scene.publish(order)
    await scene.for_order(StockReserved, order.order_id)
    shipment_id = unique("shp")
    first = shipped(order.order_id, "wh-paris", {sku: 2}, shipment_id=shipment_id)
    again = shipped(order.order_id, "wh-paris", {sku: 2}, shipment_id=shipment_id)

    await scene.publish(first, again)
    await scene.handled(first, again)

    events = await scene.all_for_order(order.order_id)
    assert [type(event) for event in events] == [StockReserved, StockCommitted]
    assert await scene.levels(sku) == {"wh-paris": (8, 0)}


async def test_a_shipment_beyond_the_records_commits_what_exists_and_no_more(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-madrid", 3)
    shipment = shipped(unique("ord"), "wh-madrid", {sku: 5})

    await scene.publish(shipment)

    [committed] = await scene.for_order(StockCommitted, shipment.order_id)
    assert [(line.sku, line.quantity) for line in committed.lines] == [(sku, 3)]
    assert await scene.levels(sku) == {"wh-madrid": (0, 0)}


# --- Returns ---------------------------------------------------------------------------


async def test_returned_units_that_pass_inspection_are_restocked(scene: Scene) -> None:
    sku, broken = unique("A"), unique("B")
    await scene.receive(sku, "wh-berlin", 1)
    received = return_received(unique("ord"), "wh-berlin", {sku: (3, 2), broken: (1, 0)})

    await scene.publish(received)

    [restocked] = await scene.for_order(StockRestocked, received.order_id)
    assert restocked.warehouse_id == "wh-berlin"
    assert [(line.sku, line.quantity) for line in restocked.lines] == [(sku, 2)]
    assert await scene.levels(sku) == {"wh-berlin": (3, 0)}
    ledger = (await scene.client.get("/ledger", params={"order_id": received.order_id})).json()
    assert sorted((m["sku"], m["kind"], m["quantity"]) for m in ledger["movements"]) == sorted(
        [(sku, "restocked", 2), (sku, "written_off", 1), (broken, "written_off", 1)]
    )


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            return_received(unique("ord"), "wh-nowhere", {unique("A"): (1, 1)}), id="return"
        ),
        pytest.param(shipped(unique("ord"), "wh-nowhere", {unique("A"): 1}), id="shipment"),
    ],
)
async def test_units_booked_at_an_unknown_warehouse_are_dead_lettered(
    scene: Scene, event: OrderEvent
) -> None:
    await scene.publish(event)

    dead_letters = scene.names.dead_letters("inventory")

    async def dead_lettered() -> bool:
        records = await read_all(
            scene.infrastructure.kafka_bootstrap_servers, dead_letters, expect=1, timeout=3
        )
        return any(
            decode(header_map(record.headers), record.value).event_id == event.event_id
            for record in records
        )

    await eventually(dead_lettered, timeout=60, interval=1)
    assert await scene.all_for_order(event.order_id) == []


# --- Low stock -------------------------------------------------------------------------


async def test_low_stock_is_detected_once_when_available_falls_below_threshold(
    scene: Scene,
) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-madrid", 7)
    answer = await scene.client.put(f"/stock/{sku}/threshold", json={"threshold": 5})
    assert answer.json() == {"sku": sku, "threshold": 5}
    orders = [order_placed(unique("ord"), {sku: 1}, country="ES") for _ in range(4)]

    # Available goes 7, 6, 5, 4 (below 5: the alert), 3 (still below: no second alert).
    for order in orders:
        await scene.publish(order)
        await scene.for_order(StockReserved, order.order_id)

    low = await scene.emitted(LowStockDetected, lambda event: event.sku == sku)
    assert [(e.warehouse_id, e.available, e.threshold) for e in low] == [("wh-madrid", 4, 5)]
    assert (await scene.client.get(f"/stock/{sku}")).json()["threshold"] == 5


async def test_an_adjustment_below_the_default_threshold_raises_the_alert(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 3)

    answer = await scene.client.post(
        "/stock/adjustments",
        json={"sku": sku, "warehouse_id": "wh-paris", "delta": -2, "reason": "broken in aisle"},
    )

    assert answer.status_code == 200, answer.text
    [low] = await scene.emitted(LowStockDetected, lambda event: event.sku == sku)
    assert (low.available, low.threshold) == (1, DEFAULT_THRESHOLD)


# --- HTTP commands ---------------------------------------------------------------------


async def test_a_receipt_booked_twice_counts_once(scene: Scene) -> None:
    sku = unique("A")
    receipt = {"sku": sku, "warehouse_id": "wh-paris", "quantity": 4, "reference": unique("po")}

    first = await scene.client.post("/stock/receipts", json=receipt)
    again = await scene.client.post("/stock/receipts", json=receipt)
    reused = await scene.client.post("/stock/receipts", json={**receipt, "quantity": 5})

    assert first.status_code == 201
    assert first.json() == {
        "sku": sku,
        "warehouse_id": "wh-paris",
        "on_hand": 4,
        "reserved": 0,
        "available": 4,
        "duplicate": False,
    }
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert (reused.status_code, reused.json()["code"]) == (409, "reference_reused")
    assert await scene.levels(sku) == {"wh-paris": (4, 0)}


async def test_a_receipt_for_an_unknown_warehouse_is_not_found(scene: Scene) -> None:
    answer = await scene.client.post(
        "/stock/receipts",
        json={"sku": "A", "warehouse_id": "wh-nowhere", "quantity": 1, "reference": "po-1"},
    )
    assert (answer.status_code, answer.json()["code"]) == (404, "unknown_warehouse")


async def test_an_adjustment_cannot_take_on_hand_below_reserved(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 5)
    order = order_placed(unique("ord"), {sku: 4})
    await scene.publish(order)
    await scene.for_order(StockReserved, order.order_id)
    adjustment = {"sku": sku, "warehouse_id": "wh-paris", "reason": "stock count"}

    refused = await scene.client.post("/stock/adjustments", json={**adjustment, "delta": -2})
    unknown = await scene.client.post(
        "/stock/adjustments", json={**adjustment, "sku": unique("A"), "delta": -1}
    )
    accepted = await scene.client.post(
        "/stock/adjustments", json={**adjustment, "delta": -1, "reference": "count-7"}
    )
    repeated = await scene.client.post(
        "/stock/adjustments", json={**adjustment, "delta": -1, "reference": "count-7"}
    )
    zero = await scene.client.post("/stock/adjustments", json={**adjustment, "delta": 0})

    assert (refused.status_code, refused.json()["code"]) == (409, "below_reserved")
    assert (unknown.status_code, unknown.json()["code"]) == (409, "below_reserved")
    assert accepted.status_code == 200
    assert (accepted.json()["on_hand"], accepted.json()["available"]) == (4, 0)
    assert (repeated.status_code, repeated.json()["duplicate"]) == (200, True)
    assert zero.status_code == 422
    assert await scene.levels(sku) == {"wh-paris": (4, 4)}


async def test_warehouses_are_created_updated_and_validated(scene: Scene) -> None:
    warehouse_id = unique("wh")
    body = {"name": "Oslo", "country": "NO", "latitude": 59.91, "longitude": 10.75}

    created = await scene.client.put(f"/warehouses/{warehouse_id}", json=body)
    updated = await scene.client.put(
        f"/warehouses/{warehouse_id}", json={**body, "name": "Oslo North"}
    )
    bad_country = await scene.client.put(
        f"/warehouses/{warehouse_id}", json={**body, "country": "XX"}
    )
    bad_latitude = await scene.client.put(
        f"/warehouses/{warehouse_id}", json={**body, "latitude": 91}
    )

    assert created.status_code == 201
    assert updated.status_code == 200
    assert (bad_country.status_code, bad_latitude.status_code) == (422, 422)
    listed = {w["warehouse_id"]: w for w in (await scene.client.get("/warehouses")).json()}
    assert listed[warehouse_id] == {"warehouse_id": warehouse_id, **body, "name": "Oslo North"}


async def test_queries_page_and_answer_not_found(scene: Scene) -> None:
    sku = unique("A")
    await scene.receive(sku, "wh-paris", 1)

    first = (await scene.client.get("/stock", params={"limit": 1})).json()
    second = (await scene.client.get("/stock", params={"limit": 1, "offset": 1})).json()
    unknown_sku = await scene.client.get(f"/stock/{unique('none')}")
    unknown_order = await scene.client.get(f"/reservations/{unique('none')}")

    assert len(first["items"]) == len(second["items"]) == 1
    assert first["items"] != second["items"]
    assert first["next_offset"] == 1
    assert (unknown_sku.status_code, unknown_sku.json()["code"]) == (404, "unknown_sku")
    assert (unknown_order.status_code, unknown_order.json()["code"]) == (404, "unknown_order")
