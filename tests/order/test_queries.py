"""GET /orders (filters, keyset pagination) and the order's timeline across services,
against the real Kafka and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.base import Event
from contracts.events.common import Allocation, SkuQuantity
from contracts.events.fulfilment import Package, ShipmentPacked
from contracts.events.inventory import (
    LowStockDetected,
    StockCommitted,
    StockReleased,
    StockRestocked,
)
from contracts.events.notification import NotificationChannel, NotificationFailed, NotificationSent
from contracts.events.order import OrderConfirmed
from contracts.events.returns import (
    ReceivedLine,
    ReturnApproved,
    Returned,
    ReturnReceived,
)
from services.order.views import OrderCursor
from tests.kafka_tools import eventually
from tests.order.scene import (
    Scene,
    about,
    delivered,
    new_key,
    order_fields,
    shipment_created,
    shipped,
    stock_reserved,
    submitted,
)

pytestmark = pytest.mark.integration


async def post(scene: Scene, **changes: Any) -> dict[str, Any]:
    body = {**order_fields(channel="b2b"), "placed_by": "rep:jdoe", **changes}
    response = await scene.client.post("/orders", json=body, headers=new_key())
    assert response.status_code == 201, response.text
    view: dict[str, Any] = response.json()
    return view


def customer(customer_id: str) -> dict[str, str]:
    return {
        "customer_id": customer_id,
        "email": "grace@example.com",
        "name": "Grace Hopper",
        "locale": "en",
    }


async def listing(scene: Scene, **params: Any) -> dict[str, Any]:
    response = await scene.client.get("/orders", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


# --- the listing ------------------------------------------------------------------------------


async def test_pages_follow_the_cursor_newest_first_until_the_last(scene: Scene) -> None:
    customer_id = f"cus_{uuid.uuid4().hex[:8]}"
    created = [(await post(scene, customer=customer(customer_id)))["order_id"] for _ in range(5)]

    pages = [await listing(scene, customer_id=customer_id, limit=2)]
    while pages[-1]["next_cursor"] is not None:
        pages.append(
            await listing(scene, customer_id=customer_id, limit=2, cursor=pages[-1]["next_cursor"])
        )

    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    listed = [item["order_id"] for page in pages for item in page["items"]]
    assert listed == list(reversed(created))
    assert pages[0]["items"][0]["customer_id"] == customer_id
    assert pages[0]["items"][0]["placed_at"] is not None


async def test_a_page_that_ends_exactly_at_the_last_order_has_no_next_cursor(
    scene: Scene,
) -> None:
    customer_id = f"cus_{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        await post(scene, customer=customer(customer_id))

    page = await listing(scene, customer_id=customer_id, limit=2)

    assert len(page["items"]) == 2 and page["next_cursor"] is None


async def test_filters_by_channel_status_customer_and_external_id(scene: Scene) -> None:
    customer_id = f"cus_{uuid.uuid4().hex[:8]}"
    kept = await post(scene, customer=customer(customer_id))
    cancelled = await post(scene, customer=customer(customer_id))
    response = await scene.client.post(
        f"/orders/{cancelled['order_id']}/cancel",
        json={"reason": "customer_request", "cancelled_by": "customer"},
    )
    assert response.status_code == 200

    def ids(page: dict[str, Any]) -> list[str]:
        return [item["order_id"] for item in page["items"]]

    assert ids(await listing(scene, customer_id=customer_id, status="cancelled")) == [
        cancelled["order_id"]
    ]
    assert ids(await listing(scene, customer_id=customer_id, channel="webshop")) == []
    assert ids(
        await listing(
            scene, channel="b2b", external_order_id=kept["external_order_id"], status="placed"
        )
    ) == [kept["order_id"]]


async def test_filters_by_the_day_or_moment_placed(scene: Scene) -> None:
    customer_id = f"cus_{uuid.uuid4().hex[:8]}"
    moments = ["2031-01-10T23:59:59Z", "2031-01-11T00:00:00Z", "2031-01-11T23:59:59Z"]
    late = "2031-01-12T00:00:00Z"
    orders = {
        moment: (await post(scene, customer=customer(customer_id), submitted_at=moment))["order_id"]
        for moment in [*moments, late]
    }

    async def placed(**bounds: str) -> set[str]:
        page = await listing(scene, customer_id=customer_id, **bounds)
        return {item["order_id"] for item in page["items"]}

    assert await placed(placed_from="2031-01-11", placed_to="2031-01-11") == {
        orders[moments[1]],
        orders[moments[2]],
    }
    assert await placed(placed_to="2031-01-11T00:00:00Z") == {
        orders[moments[0]],
        orders[moments[1]],
    }, "a moment bound is inclusive"
    assert await placed(placed_from="2031-01-12T02:00:00+02:00") == {orders[late]}
    assert await placed(placed_from="2031-01-11T23:59:59") == {
        orders[moments[2]],
        orders[late],
    }, "a moment without an offset is UTC"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": OrderCursor(datetime.now(UTC), "ord_\x00").encode()}, "cursor"),
        ({"cursor": "eyJhIjoxfQ"}, "cursor"),
        ({"cursor": "x" * 600}, "cursor"),
        ({"placed_from": "yesterday"}, "placed_from"),
        ({"placed_to": "2031-02-30"}, "placed_to"),
        ({"placed_to": "0001-01-01T00:00:00+05:00"}, "placed_to"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "lost"}, "status"),
        ({"channel": "Web Shop"}, "channel"),
        ({"customer_id": "cus\x00"}, "customer_id"),
        ({"external_order_id": "x" * 200}, "external_order_id"),
    ],
)
async def test_bad_listing_parameters_are_422_naming_the_parameter(
    scene: Scene, params: dict[str, Any], field: str
) -> None:
    response = await scene.client.get("/orders", params=params)

    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


async def test_the_last_day_there_is_can_be_a_bound(scene: Scene) -> None:
    page = await listing(scene, placed_from="9999-12-31", placed_to="9999-12-31")
    assert page == {"items": [], "next_cursor": None}


# --- the timeline -----------------------------------------------------------------------------


def every_other_event(order_id: str) -> list[Event]:
    """One event of each class the order service consumes and only shows."""
    lines = (SkuQuantity(sku="SKU-A", quantity=2),)
    notification: dict[str, Any] = {
        "subject_key": order_id,
        "cause_event_id": uuid.uuid4(),
        "cause_event_type": "oms.Shipped.v1",
        "channel": NotificationChannel.EMAIL,
        "recipient": "ada@example.com",
        "template": "order_shipped",
        "attempts": 1,
    }
    return [
        StockCommitted(order_id=order_id, shipment_id="shp_1", warehouse_id="wh-1", lines=lines),
        ShipmentPacked(
            order_id=order_id,
            shipment_id="shp_1",
            packages=(Package(package_id="pkg_1", weight_grams=900),),
        ),
        ReturnApproved(order_id=order_id, return_id="rma_1", label_reference="RL-1", lines=lines),
        ReturnReceived(
            order_id=order_id,
            return_id="rma_1",
            warehouse_id="wh-1",
            lines=(ReceivedLine(sku="SKU-A", quantity=2, restockable_quantity=1),),
        ),
        StockRestocked(order_id=order_id, return_id="rma_1", warehouse_id="wh-1", lines=lines),
        StockReleased(
            order_id=order_id,
            reservation_id=f"res_{order_id}",
            allocations=(Allocation(warehouse_id="wh-1", sku="SKU-A", quantity=2),),
        ),
        NotificationSent(notification_id="ntf_1", **notification),
        NotificationFailed(
            notification_id="ntf_2", error="550 mailbox \x00 unavailable", **notification
        ),
    ]


async def timeline(scene: Scene, order_id: str) -> list[dict[str, Any]]:
    response = await scene.client.get(f"/orders/{order_id}/timeline")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


async def test_the_timeline_gathers_every_event_of_the_order_from_every_service(
    scene: Scene,
) -> None:
    order_id = (await post(scene))["order_id"]
    flow: list[Event] = [
        stock_reserved(order_id),
        shipment_created(order_id, "shp_1", {"SKU-A": 2, "SKU-B": 1}),
        shipped(order_id, "shp_1", {"SKU-A": 2, "SKU-B": 1}),
        delivered(order_id, "shp_1"),
        Returned(
            order_id=order_id, return_id="rma_1", lines=(SkuQuantity(sku="SKU-A", quantity=2),)
        ),
        *every_other_event(order_id),
    ]
    await scene.publish(*flow)
    await scene.wait_for(OrderConfirmed, about(order_id))
    for event in flow:
        await eventually(lambda event=event: scene.consumed(event))  # type: ignore[misc]

    entries = await timeline(scene, order_id)

    by_type = {entry["event_type"]: entry for entry in entries}
    assert {f"oms.{type(event).__name__}.v1" for event in flow} <= set(by_type)
    assert {"oms.OrderSubmitted.v1", "oms.OrderPlaced.v1", "oms.OrderConfirmed.v1"} <= set(by_type)
    assert by_type["oms.OrderSubmitted.v1"]["source"] == "channel"
    assert by_type["oms.OrderSubmitted.v1"]["details"]["via"] == "http"
    assert by_type["oms.OrderPlaced.v1"]["source"] == "order"
    assert by_type["oms.StockCommitted.v1"]["source"] == "inventory"
    assert by_type["oms.ShipmentPacked.v1"]["source"] == "fulfilment"
    assert by_type["oms.ShipmentPacked.v1"]["details"] == {
        "shipment_id": "shp_1",
        "package_count": 1,
    }
    assert by_type["oms.ReturnApproved.v1"]["source"] == "returns"
    assert by_type["oms.NotificationFailed.v1"]["source"] == "notification"
    assert "\x00" not in by_type["oms.NotificationFailed.v1"]["summary"]
    assert by_type["oms.Shipped.v1"]["summary"] == (
        "Shipment shp_1 shipped with colissimo, tracking TRKshp_1"
    )
    assert entries == sorted(entries, key=lambda entry: (entry["occurred_at"], entry["event_id"]))
    assert len({entry["event_id"] for entry in entries}) == len(entries)
    view = (await scene.client.get(f"/orders/{order_id}")).json()
    assert view["timeline"] == entries


async def test_the_timeline_is_in_time_order_whatever_the_arrival_order(scene: Scene) -> None:
    order_id = (await post(scene))["order_id"]
    earlier = datetime.now(UTC) - timedelta(hours=1)
    late_news = delivered(order_id, "shp_1").model_copy(update={"occurred_at": earlier})
    news = shipped(order_id, "shp_1", {"SKU-A": 2})
    await scene.publish(news, late_news, news)
    await eventually(lambda: scene.consumed(late_news))
    await eventually(lambda: scene.consumed(news))

    types = [entry["event_type"] for entry in await timeline(scene, order_id)]

    assert types[0] == "oms.Delivered.v1", "ordered by when it happened, not when heard"
    assert types.count("oms.Shipped.v1") == 1, "a redelivered event is one entry"


async def test_a_channel_submission_is_on_the_timeline_under_its_own_event_id(
    scene: Scene,
) -> None:
    submission = submitted(order_fields())
    await scene.publish(submission)
    page: dict[str, Any] = {}

    async def placed() -> bool:
        page.update(await listing(scene, external_order_id=submission.external_order_id))
        return bool(page["items"])

    await eventually(placed)
    order_id = page["items"][0]["order_id"]

    async def recorded() -> bool:
        return len(await timeline(scene, order_id)) == 2

    await eventually(recorded)
    first, second = await timeline(scene, order_id)
    assert (first["event_id"], first["event_type"]) == (
        str(submission.event_id),
        "oms.OrderSubmitted.v1",
    )
    assert first["details"]["via"] == "kafka" and first["details"]["outcome"] == "placed"
    assert second["event_type"] == "oms.OrderPlaced.v1"


async def test_events_without_a_known_order_leave_no_timeline_and_are_consumed(
    scene: Scene,
) -> None:
    about_a_sku = NotificationSent(
        subject_key="SKU-A",
        notification_id="ntf_stock",
        cause_event_id=uuid.uuid4(),
        cause_event_type="oms.LowStockDetected.v1",
        channel=NotificationChannel.EMAIL,
        recipient="ops@example.com",
        template="low_stock",
        attempts=1,
    )
    stray = ShipmentPacked(
        order_id="ord_nobody",
        shipment_id="shp_x",
        packages=(Package(package_id="p", weight_grams=1),),
    )
    low = LowStockDetected(sku="SKU-A", warehouse_id="wh-1", available=1, threshold=5)
    await scene.publish(low, about_a_sku, stray)

    await eventually(lambda: scene.consumed(about_a_sku))
    await eventually(lambda: scene.consumed(stray))
    assert (await scene.client.get("/orders/ord_nobody/timeline")).status_code == 404


async def test_a_rejected_order_shows_its_submission_and_its_rejection(scene: Scene) -> None:
    body = {**order_fields({"SKU-NEVER": 1}, channel="b2b"), "placed_by": "rep:jdoe"}
    response = await scene.client.post("/orders", json=body, headers=new_key())
    assert response.status_code == 422

    entries = await timeline(scene, response.json()["order_id"])

    assert [entry["event_type"] for entry in entries] == [
        "oms.OrderSubmitted.v1",
        "oms.OrderRejected.v1",
    ]
    assert entries[1]["summary"] == "Order rejected: unknown_sku"
    assert entries[0]["details"]["outcome"] == "rejected"
