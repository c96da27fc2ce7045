"""The automatic mode plays warehouse and carrier: shipments reach Delivered by
themselves, across restarts, database outages and several replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from contracts.events.fulfilment import Delivered, ShipmentCreated, ShipmentPacked, Shipped
from tests.fulfilment.harness import (
    Fulfilment,
    new_order_id,
    running_fulfilment,
    stock_reserved,
)
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually
from tests.service_harness import fresh_namespace

pytestmark = pytest.mark.integration

AUTOMATIC: dict[str, Any] = {
    "fulfilment_auto": True,
    "fulfilment_auto_pack_seconds": 0.2,
    "fulfilment_auto_ship_seconds": 0.2,
    "fulfilment_auto_deliver_seconds": 0.2,
    "fulfilment_auto_idle_seconds": 0.05,
    "fulfilment_auto_retry_seconds": 0.2,
}


async def all_delivered(fulfilment: Fulfilment, order_id: str, *, shipments: int) -> bool:
    listed = await fulfilment.shipments(order_id)
    return len(listed) == shipments and all(s["status"] == "delivered" for s in listed)


async def test_advances_a_shipment_to_delivered_by_itself(infrastructure: Infrastructure) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fulfilment_auto")
    async with running_fulfilment(infrastructure, names, database_url, **AUTOMATIC) as service:
        order_id = new_order_id()
        await service.publish(stock_reserved(order_id, ("wh-paris", "SKU-A", 2)))

        await eventually(lambda: all_delivered(service, order_id, shipments=1), timeout=30)

        events = await service.published(order_id)
        assert [type(event) for event in events] == [
            ShipmentCreated,
            ShipmentPacked,
            Shipped,
            Delivered,
        ]
        shipment = (await service.shipments(order_id))[0]
        assert shipment["next_step_at"] is None
        assert shipment["packages"] == [{"package_id": "pkg_1", "weight_grams": 1000}]


async def test_hands_a_pickup_over_by_itself_and_counts_it_collected(
    infrastructure: Infrastructure,
) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fulfilment_auto_pickup")
    async with running_fulfilment(infrastructure, names, database_url, **AUTOMATIC) as service:
        order_id = new_order_id()
        await service.publish(stock_reserved(order_id, ("wh-paris", "SKU-A", 1), address=None))

        await eventually(lambda: all_delivered(service, order_id, shipments=1), timeout=30)

        events = await service.published(order_id)
        assert [type(event) for event in events] == [
            ShipmentCreated,
            ShipmentPacked,
            Shipped,
            Delivered,
        ]
        created, shipped = events[0], events[2]
        assert isinstance(created, ShipmentCreated) and isinstance(shipped, Shipped)
        assert (created.carrier, created.shipping_cost.amount_minor) == ("pickup", 0)
        assert shipped.tracking_number.startswith("PU")
        shipment = (await service.shipments(order_id))[0]
        assert shipment["delivered_at"] == shipment["shipped_at"]


async def test_picks_up_after_a_restart_where_the_database_left_off(
    infrastructure: Infrastructure,
) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fulfilment_restart")
    order_id = new_order_id()
    reserved = stock_reserved(order_id, ("wh-paris", "SKU-A", 1))
    async with running_fulfilment(infrastructure, names, database_url) as manual:
        await manual.publish(reserved)
        await manual.handled(reserved)
        assert (await manual.shipments(order_id))[0]["status"] == "created"

    async with running_fulfilment(infrastructure, names, database_url, **AUTOMATIC) as restarted:
        await eventually(lambda: all_delivered(restarted, order_id, shipments=1), timeout=30)
        assert Counter(type(event) for event in await restarted.published(order_id)) == {
            ShipmentCreated: 1,
            ShipmentPacked: 1,
            Shipped: 1,
            Delivered: 1,
        }


@contextlib.asynccontextmanager
async def database_down(infrastructure: Infrastructure, database_url: str) -> AsyncIterator[None]:
    """The service's database refuses connections and drops the ones it has, until the
    block ends (only this test's own database is touched)."""
    name = make_url(database_url).database
    admin = await asyncpg.connect(infrastructure.postgres_admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_keeps_going_after_a_database_outage(infrastructure: Infrastructure) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fulfilment_outage")
    single_worker = {**AUTOMATIC, "fulfilment_auto_workers": 1}
    async with running_fulfilment(infrastructure, names, database_url, **single_worker) as service:
        async with database_down(infrastructure, database_url):
            # Long enough for the automatic mode to fail several times over.
            await asyncio.sleep(2)
        order_id = new_order_id()
        await service.publish(stock_reserved(order_id, ("wh-paris", "SKU-A", 1)))

        await eventually(lambda: all_delivered(service, order_id, shipments=1), timeout=45)


async def test_two_replicas_never_step_the_same_shipment_twice(
    infrastructure: Infrastructure,
) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fulfilment_replicas")
    busy = {**AUTOMATIC, "fulfilment_auto_workers": 4}
    order_ids = [new_order_id() for _ in range(8)]
    async with (
        running_fulfilment(infrastructure, names, database_url, **busy) as first,
        running_fulfilment(infrastructure, names, database_url, **busy),
    ):
        await first.publish(
            *(
                stock_reserved(order_id, ("wh-paris", "SKU-A", 1), ("wh-berlin", "SKU-B", 1))
                for order_id in order_ids
            )
        )

        async def every_order_delivered() -> bool:
            for order_id in order_ids:
                if not await all_delivered(first, order_id, shipments=2):
                    return False
            return True

        await eventually(every_order_delivered, timeout=60)

        for order_id in order_ids:
            counts = Counter(
                (type(event), getattr(event, "shipment_id", None))
                for event in await first.published(order_id)
            )
            assert len(counts) == 8  # four events for each of two shipments
            assert set(counts.values()) == {1}
