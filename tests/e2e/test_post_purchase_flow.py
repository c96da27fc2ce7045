"""The post-purchase flow end to end: the five services as separate processes on the real
Kafka and PostgreSQL, a real SMTP server, and assertions on each service's own state (its
HTTP API) and on the events on the topics."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from email.message import Message
from typing import Any

import pytest

from contracts.base import Event, new_event_id
from contracts.events.channel import OrderSubmitted
from tests.e2e.flow import (
    UNIT_PRICE,
    Flow,
    channel_order,
    seed_catalogue,
    unique,
)
from tests.e2e.system import running_system
from tests.infrastructure import REPO, Infrastructure
from tests.kafka_tools import eventually
from tests.service_harness import publish_events

pytestmark = pytest.mark.e2e

ORDER = "oms.order.v1"
INVENTORY = "oms.inventory.v1"
FULFILMENT = "oms.fulfilment.v1"
RETURNS = "oms.returns.v1"


@pytest.fixture(scope="module")
async def flow(infrastructure: Infrastructure) -> AsyncIterator[Flow]:
    async with running_system(
        infrastructure,
        REPO / "reports" / "e2e-logs",
    ) as system:
        yield Flow(system, infrastructure)


async def flow_seed(flow: Flow, stock: dict[str, dict[str, int]]) -> None:
    await seed_catalogue(flow.system, stock)


async def mails_to(flow: Flow, order: OrderSubmitted, count: int) -> list[Message]:
    """The messages to the order's customer once `count` have arrived, after a pause long
    enough for a wrongly doubled message to arrive too."""
    address = order.customer.email
    assert address is not None

    async def arrived() -> bool:
        return len(flow.system.mail.to(address)) >= count

    await eventually(arrived, timeout=30)
    await asyncio.sleep(1.5)
    return flow.system.mail.to(address)


def distinct_facts(events: list[Event]) -> dict[str, int]:
    """How many distinct events (by event id) of each type: replayed copies count once."""
    return dict(Counter(type(event).__name__ for event in {e.event_id: e for e in events}.values()))


async def test_happy_path_from_one_warehouse_reaches_delivered_and_mails_in_french(
    flow: Flow,
) -> None:
    sku = unique("sku-lamp")
    await flow_seed(flow, {sku: {"wh-paris": 10, "wh-berlin": 10}})
    order = channel_order([(sku, 2)], locale="fr")

    order_id = await flow.submit(order)
    await flow.wait_status(order_id, "confirmed")
    [shipment] = await flow.shipments(order_id, 1)
    assert shipment["warehouse_id"] == "wh-paris", "nearest warehouse that fills the order"
    shipped = await flow.ship(shipment["shipment_id"])
    await flow.wait_status(order_id, "shipped")
    await flow.deliver(shipped["tracking_number"])
    final = await flow.wait_status(order_id, "delivered")

    assert [change["to_status"] for change in final["status_history"]] == [
        "placed",
        "confirmed",
        "shipped",
        "delivered",
    ]
    await flow.wait_stock(sku, on_hand=18, reserved=0)
    await flow.wait_event_types(order_id, ORDER, ["OrderPlaced", "OrderConfirmed"])
    await flow.wait_event_types(order_id, INVENTORY, ["StockReserved", "StockCommitted"])
    await flow.wait_event_types(
        order_id, FULFILMENT, ["ShipmentCreated", "ShipmentPacked", "Shipped", "Delivered"]
    )
    mails = await mails_to(flow, order, 3)
    assert [mail["Content-Language"] for mail in mails] == ["fr", "fr", "fr"]
    subjects = [str(mail["Subject"]) for mail in mails]
    assert any("reçu votre commande" in subject for subject in subjects), subjects
    assert any("en route" in subject for subject in subjects), subjects
    assert any("livrée" in subject for subject in subjects), subjects


async def test_order_no_warehouse_can_fill_ships_as_two_shipments_through_partially_shipped(
    flow: Flow,
) -> None:
    chair, table = unique("sku-chair"), unique("sku-table")
    await flow_seed(flow, {chair: {"wh-paris": 5}, table: {"wh-berlin": 5}})
    order_id = await flow.submit(channel_order([(chair, 1), (table, 1)], locale="en"))
    await flow.wait_status(order_id, "confirmed")

    first, second = await flow.shipments(order_id, 2)
    assert {first["warehouse_id"], second["warehouse_id"]} == {"wh-paris", "wh-berlin"}
    await flow.ship(first["shipment_id"])
    await flow.wait_status(order_id, "partially_shipped")
    await flow.ship(second["shipment_id"])
    final = await flow.wait_status(order_id, "shipped")

    statuses = [change["to_status"] for change in final["status_history"]]
    assert statuses == ["placed", "confirmed", "partially_shipped", "shipped"]
    await flow.wait_event_types(
        order_id,
        FULFILMENT,
        [
            "ShipmentCreated",
            "ShipmentCreated",
            "ShipmentPacked",
            "Shipped",
            "ShipmentPacked",
            "Shipped",
        ],
    )


async def test_out_of_stock_order_is_cancelled_with_nothing_reserved_and_the_customer_told(
    flow: Flow,
) -> None:
    sku = unique("sku-rare")
    await flow_seed(flow, {sku: {"wh-paris": 1}})
    order = channel_order([(sku, 3)], locale="en")

    order_id = await flow.submit(order)
    await flow.wait_status(order_id, "cancelled")

    stock = await flow.stock(sku)
    assert (stock["on_hand"], stock["reserved"]) == (1, 0)
    async with flow.system.client("inventory") as inventory:
        reservation = (await inventory.get(f"/reservations/{order_id}")).json()
    assert reservation["status"] == "failed"
    await flow.wait_event_types(order_id, ORDER, ["OrderPlaced", "OrderCancelled"])
    await flow.wait_event_types(order_id, INVENTORY, ["StockReservationFailed"])
    assert await flow.shipments_now(order_id) == []
    mails = await mails_to(flow, order, 2)
    assert any("cancelled" in str(mail["Subject"]).lower() for mail in mails)


async def test_cancel_before_shipping_releases_stock_cancels_shipments_and_mails_once(
    flow: Flow,
) -> None:
    sku = unique("sku-vase")
    await flow_seed(flow, {sku: {"wh-lyon": 4}})
    order = channel_order([(sku, 2)], locale="en")
    order_id = await flow.submit(order)
    await flow.wait_status(order_id, "confirmed")
    [shipment] = await flow.shipments(order_id, 1)

    async with flow.system.client("order") as client:
        answer = await client.post(
            f"/orders/{order_id}/cancel",
            json={"reason": "customer_request", "cancelled_by": "agent-17"},
        )
    assert answer.status_code == 200, answer.text

    async def released() -> bool:
        return bool((await flow.stock(sku))["reserved"] == 0)

    await eventually(released)
    await flow.wait_event_types(order_id, INVENTORY, ["StockReserved", "StockReleased"])
    await flow.wait_event_types(order_id, FULFILMENT, ["ShipmentCreated", "ShipmentCancelled"])
    async with flow.system.client("fulfilment") as client:
        refused = await client.post(f"/shipments/{shipment['shipment_id']}/pick")
    assert refused.status_code == 409
    mails = await mails_to(flow, order, 2)
    cancellations = [mail for mail in mails if "cancelled" in str(mail["Subject"]).lower()]
    assert len(cancellations) == 1


async def test_return_with_partial_restock_raises_stock_by_restockable_units_and_refunds(
    flow: Flow,
) -> None:
    sku = unique("sku-mug")
    await flow_seed(flow, {sku: {"wh-paris": 10}})
    order = channel_order([(sku, 3)], locale="en")
    order_id = await flow.submit(order)
    await flow.wait_status(order_id, "confirmed")
    [shipment] = await flow.shipments(order_id, 1)
    shipped = await flow.ship(shipment["shipment_id"])
    await flow.deliver(shipped["tracking_number"])
    await flow.wait_status(order_id, "delivered")
    await flow.wait_stock(sku, on_hand=7)
    # The return is checked against the shipments the returns service has heard of.
    await flow.wait_consumed("returns", FULFILMENT)

    async with flow.system.client("returns") as returns:
        requested = await returns.post(
            "/returns",
            json={
                "order_id": order_id,
                "lines": [{"sku": sku, "quantity": 3, "reason_code": "damaged"}],
            },
        )
        assert requested.status_code == 201, requested.text
        return_id = requested.json()["return_id"]
        assert (await returns.post(f"/returns/{return_id}/approve")).status_code == 200
        received = await returns.post(
            f"/returns/{return_id}/receive",
            json={"lines": [{"sku": sku, "quantity": 3, "restockable_quantity": 2}]},
        )
        assert received.status_code == 200, received.text

    await flow.wait_status(order_id, "returned")
    # Returned and RefundIssued are two events: the status may change before the refund shows.
    final: dict[str, Any] = {}

    async def refunded() -> bool:
        final.update(await flow.order(order_id))
        return bool(final["refunds"])

    await eventually(refunded)
    # Policy: every returned unit at its price; shipping refunded on a merchant fault.
    expected_refund = 3 * UNIT_PRICE + order.shipping_charge.amount_minor
    assert [refund["amount"]["amount_minor"] for refund in final["refunds"]] == [expected_refund]

    async def restocked() -> bool:
        return bool((await flow.stock(sku))["on_hand"] == 9)

    await eventually(restocked)
    await flow.wait_event_types(
        order_id,
        RETURNS,
        ["ReturnRequested", "ReturnApproved", "ReturnReceived", "Returned", "RefundIssued"],
    )
    await flow.wait_event_types(
        order_id, INVENTORY, ["StockReserved", "StockCommitted", "StockRestocked"]
    )
    mails = await mails_to(flow, order, 5)
    assert any("refund" in str(mail["Subject"]).lower() for mail in mails)


async def test_duplicate_submissions_and_replayed_events_have_one_effect_each(
    flow: Flow,
) -> None:
    sku = unique("sku-pen")
    await flow_seed(flow, {sku: {"wh-paris": 10}})
    order = channel_order([(sku, 1)], locale="en")
    same_order_again = order.model_copy(update={"event_id": new_event_id()})

    order_id = await flow.submit(order)
    await flow.submit(same_order_again)
    await flow.wait_status(order_id, "confirmed")
    [shipment] = await flow.shipments(order_id, 1)
    placed = [
        event
        for event in await flow.events_of(order_id, ORDER)
        if type(event).__name__ == "OrderPlaced"
    ]
    reserved = [
        event
        for event in await flow.events_of(order_id, INVENTORY)
        if type(event).__name__ == "StockReserved"
    ]
    # The very same events, published again (a replay or a producer retry).
    await publish_events(flow.infrastructure, flow.system.names, *placed, *reserved)
    await flow.submit(order)
    await flow.ship(shipment["shipment_id"])
    await flow.wait_status(order_id, "shipped")

    assert await flow.order_id_of(order) == order_id
    assert len(await flow.shipments_now(order_id)) == 1
    await flow.wait_stock(sku, on_hand=9)
    # Besides the replayed copies, every service emitted each fact exactly once.
    await flow.wait_event_types(
        order_id, FULFILMENT, ["ShipmentCreated", "ShipmentPacked", "Shipped"]
    )
    assert distinct_facts(await flow.events_of(order_id, ORDER)) == {
        "OrderPlaced": 1,
        "OrderConfirmed": 1,
    }
    assert distinct_facts(await flow.events_of(order_id, INVENTORY)) == {
        "StockReserved": 1,
        "StockCommitted": 1,
    }
    mails = await mails_to(flow, order, 2)
    assert len([m for m in mails if "on its way" in str(m["Subject"])]) == 1
    assert len(mails) == 2, [str(mail["Subject"]) for mail in mails]
