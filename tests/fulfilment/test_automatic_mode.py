"""The automatic mode plays warehouse and carrier: shipments reach Delivered by
themselves, across restarts, database outages and several replicas, in rounds that step
many shipments in one transaction without letting one that fails hold back the others."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from contracts.events.fulfilment import Delivered, ShipmentCreated, ShipmentPacked, Shipped
from services.fulfilment.automation import AutomaticRounds, RoundOutcome
from services.fulfilment.domain import AutomaticDelays, ShippingPolicy, tracking_number
from services.fulfilment.service import FulfilmentRules
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


NO_DELAYS = FulfilmentRules(
    shipping=ShippingPolicy(currency="EUR", unit_weight_grams=500),
    delays=AutomaticDelays(pack_seconds=0, ship_seconds=0, deliver_seconds=0),
)
MANUAL_WITHOUT_DELAYS: dict[str, Any] = {
    # Created due at once, stepped only by the rounds the tests run themselves.
    "fulfilment_auto_pack_seconds": 0,
    "fulfilment_auto_ship_seconds": 0,
    "fulfilment_auto_deliver_seconds": 0,
}


@contextlib.asynccontextmanager
async def due_shipments(
    infrastructure: Infrastructure, prefix: str, orders: int
) -> AsyncIterator[tuple[Fulfilment, list[str]]]:
    """A service in manual mode with `orders` orders, a shipment each from Paris, due."""
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database(prefix)
    async with running_fulfilment(
        infrastructure, names, database_url, **MANUAL_WITHOUT_DELAYS
    ) as service:
        order_ids = [new_order_id() for _ in range(orders)]
        reserved = [stock_reserved(order_id, ("wh-paris", "SKU-A", 1)) for order_id in order_ids]
        await service.publish(*reserved)
        await service.handled(*reserved)
        yield service, order_ids


async def transactions_that_wrote_shipments(service: Fulfilment) -> int:
    async with service.runtime.engine.connect() as connection:
        found = await connection.scalar(text("SELECT count(DISTINCT xmin::text) FROM shipments"))
    return int(found or 0)


async def test_a_round_steps_its_due_shipments_in_one_transaction_and_an_idle_one_nothing(
    infrastructure: Infrastructure,
) -> None:
    async with due_shipments(infrastructure, "fulfilment_rounds", orders=5) as (service, orders):
        rounds = AutomaticRounds(service.runtime, NO_DELAYS, batch_size=2)
        try:
            outcomes = [await rounds.run() for _ in range(4)]
        finally:
            rounds.close()

        assert outcomes == [
            RoundOutcome(claimed=2),
            RoundOutcome(claimed=2),
            RoundOutcome(claimed=1),
            RoundOutcome(claimed=0),
        ]
        assert await transactions_that_wrote_shipments(service) == 3
        for order_id in orders:
            assert await all_delivered(service, order_id, shipments=1)
            assert [type(event) for event in await service.recorded(order_id)] == [
                ShipmentCreated,
                ShipmentPacked,
                Shipped,
                Delivered,
            ]


async def test_a_shipment_whose_step_fails_holds_back_no_other(
    infrastructure: Infrastructure,
) -> None:
    async with due_shipments(infrastructure, "fulfilment_poison", orders=3) as (service, orders):
        failing, healthy, taken = [(await service.shipments(order_id))[0] for order_id in orders]
        # Another shipment already carries the tracking number the failing one would get.
        async with service.runtime.engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE shipments SET tracking_number = :tracking, next_step_at = NULL "
                    "WHERE shipment_id = :shipment_id"
                ),
                {
                    "tracking": tracking_number("laposte", failing["shipment_id"]),
                    "shipment_id": taken["shipment_id"],
                },
            )
        rounds = AutomaticRounds(service.runtime, NO_DELAYS, batch_size=10)
        try:
            with capture_logs() as logs:
                outcome = await rounds.run()
        finally:
            rounds.close()

        assert outcome == RoundOutcome(claimed=2, failed=(failing["shipment_id"],))
        assert await all_delivered(service, healthy["order_id"], shipments=1)
        assert (await service.shipment(failing["shipment_id"]))["status"] == "created"
        assert [type(event) for event in await service.recorded(failing["order_id"])] == [
            ShipmentCreated
        ]
        assert [
            entry["shipment_id"]
            for entry in logs
            if entry["event"].startswith("automatic step failed")
        ] == [failing["shipment_id"]]


async def test_a_round_that_cannot_read_a_claimed_shipment_changes_nothing(
    infrastructure: Infrastructure,
) -> None:
    async with due_shipments(infrastructure, "fulfilment_unreadable", orders=2) as (
        service,
        orders,
    ):
        unreadable = (await service.shipments(orders[0]))[0]["shipment_id"]
        async with service.runtime.engine.begin() as connection:
            await connection.execute(
                text(
                    """UPDATE shipments SET lines = '[{"sku": "SKU-A"}]' WHERE shipment_id = :id"""
                ),
                {"id": unreadable},
            )
        rounds = AutomaticRounds(service.runtime, NO_DELAYS, batch_size=10)
        try:
            with pytest.raises(KeyError):
                await rounds.run()
        finally:
            rounds.close()

        async with service.runtime.engine.connect() as connection:
            statuses = (await connection.scalars(text("SELECT status FROM shipments"))).all()
        assert statuses == ["created", "created"]
