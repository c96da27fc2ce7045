"""Consumed events applied in batches through the kit's path, on the real database: the
events of an order in one batch apply in order, each seeing the effect of the one before;
a batch waits for an order or a shipment another transaction holds, then sees its effect."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest

from contracts.base import Event
from contracts.events.fulfilment import ShipmentCancelled, ShipmentCreated, ShipmentReplanned
from contracts.events.order import OrderShippingAddressChanged
from contracts.wire import encode
from services.fulfilment import handlers
from services.fulfilment.domain import AutomaticDelays, ShippingPolicy
from services.fulfilment.service import FulfilmentRules
from services.kit.dead_letters import ConsumedRecord
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline, Outcome
from tests.fulfilment.harness import (
    BERLIN,
    LYON,
    Fulfilment,
    address_changed,
    new_order_id,
    order_cancelled,
    running_fulfilment,
    stock_reserved,
)
from tests.infrastructure import Infrastructure
from tests.kit.harness import pipeline_for, started_producer
from tests.service_harness import fresh_namespace

pytestmark = pytest.mark.integration

RULES = FulfilmentRules(
    shipping=ShippingPolicy(currency="EUR", unit_weight_grams=500),
    delays=AutomaticDelays(pack_seconds=1.0, ship_seconds=1.0, deliver_seconds=2.0),
)
HANDLED, DUPLICATE = Outcome.HANDLED, Outcome.DUPLICATE


@dataclass
class Scene:
    fulfilment: Fulfilment
    """The service, for its database, its HTTP listing and its outbox (its consumer sees
    nothing: the events of these tests are never published)."""
    pipeline: EventPipeline
    database_url: str
    offsets: itertools.count[int]

    async def apply(self, *events: Event) -> list[Outcome]:
        """The events as one fetched batch, in this order."""
        records = []
        for event in events:
            record = encode(event, source="/test")
            records.append(
                ConsumedRecord(
                    topic=self.fulfilment.names.of_event(type(event)),
                    partition=0,
                    offset=next(self.offsets),
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                )
            )
        return await self.pipeline.process_batch(records)

    async def holder(self) -> asyncpg.Connection:
        """A connection of its own, as another replica or a warehouse's command has."""
        return await asyncpg.connect(self.database_url.replace("+asyncpg", ""))


@pytest.fixture(scope="module")
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fulfilment_batches")
    async with (
        running_fulfilment(infrastructure, names, database_url) as fulfilment,
        started_producer(infrastructure.kafka_bootstrap_servers) as producer,
    ):
        pipeline = pipeline_for(
            fulfilment.runtime.engine,
            handlers.router(RULES),
            producer,
            f"fulfilment-batches-{uuid.uuid4().hex[:8]}",
            Metrics(),
            topic_names=names,
            source="/oms/fulfilment",
        )
        yield Scene(fulfilment, pipeline, database_url, itertools.count())


async def test_an_orders_events_in_one_batch_apply_in_order_each_seeing_the_last(
    scene: Scene,
) -> None:
    first, second = new_order_id(), new_order_id()
    changed = address_changed(first, BERLIN)

    outcomes = await scene.apply(
        stock_reserved(first, ("wh-paris", "SKU-A", 1), ("wh-berlin", "SKU-B", 1)),
        stock_reserved(second, ("wh-paris", "SKU-A", 1), ("wh-berlin", "SKU-B", 1)),
        changed,
        order_cancelled(second),
        changed,
        order_cancelled(first),
    )

    assert outcomes == [HANDLED, HANDLED, HANDLED, HANDLED, DUPLICATE, HANDLED]
    events = await scene.fulfilment.recorded(first)
    assert [type(event) for event in events] == [
        ShipmentCreated,
        ShipmentCreated,
        ShipmentReplanned,
        ShipmentReplanned,
        ShipmentCancelled,
        ShipmentCancelled,
    ]
    created = {e.shipment_id: e for e in events if isinstance(e, ShipmentCreated)}
    replanned = {e.shipment_id: e for e in events if isinstance(e, ShipmentReplanned)}
    cancelled = {e.shipment_id for e in events if isinstance(e, ShipmentCancelled)}
    # Re-planned and then cancelled: the shipments the reservation had just created.
    assert set(replanned) == set(created) == cancelled
    for shipment_id, event in replanned.items():
        assert event.previous_shipping_cost == created[shipment_id].shipping_cost
        assert event.shipping_address == BERLIN
    stored = await scene.fulfilment.shipments(first)
    assert [(s["status"], s["shipping_address"]["city"]) for s in stored] == [
        ("cancelled", "Berlin"),
        ("cancelled", "Berlin"),
    ]
    assert [type(event) for event in await scene.fulfilment.recorded(second)] == [
        ShipmentCreated,
        ShipmentCreated,
        ShipmentCancelled,
        ShipmentCancelled,
    ]
    assert {s["status"] for s in await scene.fulfilment.shipments(second)} == {"cancelled"}


async def test_a_reservation_after_its_orders_cancellation_in_the_batch_creates_nothing(
    scene: Scene,
) -> None:
    cancelled, other = new_order_id(), new_order_id()

    await scene.apply(
        order_cancelled(cancelled),
        stock_reserved(other, ("wh-paris", "SKU-A", 1)),
        stock_reserved(cancelled, ("wh-paris", "SKU-A", 1)),
    )

    assert await scene.fulfilment.shipments(cancelled) == []
    assert await scene.fulfilment.recorded(cancelled) == []
    assert [type(event) for event in await scene.fulfilment.recorded(other)] == [ShipmentCreated]


async def test_an_older_address_change_later_in_the_batch_does_not_overwrite_the_newer(
    scene: Scene,
) -> None:
    order_id = new_order_id()
    newer = address_changed(order_id, LYON)
    older = OrderShippingAddressChanged(
        order_id=order_id,
        shipping_address=BERLIN,
        changed_by="agent:jdoe",
        occurred_at=newer.occurred_at - timedelta(minutes=5),
    )

    await scene.apply(newer, older, stock_reserved(order_id, ("wh-paris", "SKU-A", 1)))

    [created] = await scene.fulfilment.recorded(order_id)
    assert isinstance(created, ShipmentCreated)
    assert created.shipping_address == LYON


async def test_a_batch_waits_for_an_order_another_transaction_holds_and_sees_its_effect(
    scene: Scene,
) -> None:
    order_id = new_order_id()
    holder = await scene.holder()
    try:
        transaction = holder.transaction()
        await transaction.start()
        # Another replica applying the order's cancellation right now.
        await holder.execute("INSERT INTO order_facts (order_id) VALUES ($1)", order_id)
        applying = asyncio.create_task(
            scene.apply(stock_reserved(order_id, ("wh-paris", "SKU-A", 1)))
        )
        await asyncio.sleep(0.5)
        assert not applying.done(), "the batch must wait for the order's row"
        await holder.execute(
            "UPDATE order_facts SET cancelled_at = now(), cancellation_reason = 'fraud' "
            "WHERE order_id = $1",
            order_id,
        )
        await transaction.commit()
        assert await applying == [HANDLED]
    finally:
        await holder.close()

    assert await scene.fulfilment.shipments(order_id) == []
    assert await scene.fulfilment.recorded(order_id) == []


async def test_a_cancellation_waits_for_a_shipment_being_shipped_and_leaves_it_shipped(
    scene: Scene,
) -> None:
    order_id = new_order_id()
    await scene.apply(stock_reserved(order_id, ("wh-paris", "SKU-A", 1)))
    [shipment] = await scene.fulfilment.shipments(order_id)
    holder = await scene.holder()
    try:
        transaction = holder.transaction()
        await transaction.start()
        # A warehouse's ship command in flight: it holds the shipment.
        await holder.execute(
            "SELECT 1 FROM shipments WHERE shipment_id = $1 FOR UPDATE", shipment["shipment_id"]
        )
        applying = asyncio.create_task(scene.apply(order_cancelled(order_id)))
        await asyncio.sleep(0.5)
        assert not applying.done(), "the batch must wait for the shipment"
        await holder.execute(
            "UPDATE shipments SET status = 'shipped', shipped_at = now() WHERE shipment_id = $1",
            shipment["shipment_id"],
        )
        await transaction.commit()
        assert await applying == [HANDLED]
    finally:
        await holder.close()

    assert (await scene.fulfilment.shipment(shipment["shipment_id"]))["status"] == "shipped"
    assert [type(event) for event in await scene.fulfilment.recorded(order_id)] == [ShipmentCreated]
