"""The order service in-process against the real Kafka and PostgreSQL, and the builders
of the events and bodies the order tests send it."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.base import Event, Money
from contracts.events.channel import OrderSubmitted
from contracts.events.common import (
    Address,
    Allocation,
    ShippingSpeed,
    SkuQuantity,
)
from contracts.events.fulfilment import (
    Delivered,
    ShipmentCreated,
    Shipped,
)
from contracts.events.inventory import StockReserved
from contracts.wire import decode, header_map
from services.kit.runtime import ServiceRuntime
from services.kit.tables import inbox
from services.kit.topics import TopicNames
from services.order.app import OrderSettings, create_app
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually
from tests.service_harness import (
    fresh_namespace,
    publish_events,
    running_service,
    settings_environment,
)

ORDER_TOPIC = "oms.order.v1"
EventT = TypeVar("EventT", bound=Event)


@dataclass
class Scene:
    infrastructure: Infrastructure
    names: TopicNames
    client: httpx.AsyncClient
    database: AsyncEngine
    runtime: ServiceRuntime

    async def publish(self, *events: Event) -> None:
        await publish_events(self.infrastructure, self.names, *events)

    async def records(self, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_topic(
            self.infrastructure.kafka_bootstrap_servers, self.names.physical(topic)
        )

    async def order_events(
        self, where: Callable[[Event], bool] = lambda _event: True
    ) -> list[Event]:
        records = await self.records(ORDER_TOPIC)
        events = [decode(header_map(record.headers), record.value) for record in records]
        return [event for event in events if where(event)]

    async def wait_for(
        self, event_class: type[EventT], where: Callable[[EventT], bool], *, count: int = 1
    ) -> list[EventT]:
        found: list[EventT] = []

        async def arrived() -> bool:
            found[:] = [
                event
                for event in await self.order_events()
                if isinstance(event, event_class) and where(event)
            ]
            return len(found) >= count

        await eventually(arrived, timeout=30)
        return found

    async def consumed(self, event: Event) -> bool:
        async with self.database.connect() as connection:
            found = await connection.scalar(
                select(inbox.c.event_id).where(inbox.c.event_id == event.event_id)
            )
        return found is not None

    async def status_of(self, order_id: str) -> str:
        response = await self.client.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        status: str = response.json()["status"]
        return status

    async def reaches(self, order_id: str, status: str) -> None:
        async def arrived() -> bool:
            return await self.status_of(order_id) == status

        await eventually(arrived, timeout=30)


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic up to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, number) for number in range(3)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while await _behind(consumer, ends):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    positions = {partition: await consumer.position(partition) for partition in ends}
    return any(positions[partition] < end for partition, end in ends.items())


@contextlib.asynccontextmanager
async def open_scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("order")
    settings = OrderSettings(
        **settings_environment(infrastructure, names, database_url),
        completion_interval_seconds=0.2,
        deliverable_countries=frozenset({"FR", "DE", "BE", "HK"}),
    )
    database = create_async_engine(database_url)
    app = create_app(settings)
    async with running_service(app) as client:
        for sku in ("SKU-A", "SKU-B", "SKU-C"):
            response = await client.put(
                f"/products/{sku}", json={"name": f"Product {sku}", "active": True}
            )
            assert response.status_code == 200, response.text
        response = await client.put("/products/SKU-OLD", json={"name": "Retired", "active": False})
        assert response.status_code == 200
        yield Scene(infrastructure, names, client, database, app.state.runtime)
    await database.dispose()


# --- building events -------------------------------------------------------------------------

ADDRESS = Address(
    name="Ada Lovelace", line1="12 rue de la Paix", city="Paris", postal_code="75002", country="FR"
)
NEW_ADDRESS = Address(
    name="Ada Lovelace", line1="1 avenue Foch", city="Lyon", postal_code="69006", country="FR"
)


def eur(amount: int) -> Money:
    return Money(amount_minor=amount, currency="EUR")


def order_fields(
    lines: dict[str, int] | None = None,
    *,
    channel: str = "webshop",
    external_order_id: str | None = None,
) -> dict[str, Any]:
    """The fields of a consistent order: 10.00 EUR a unit, 4.90 EUR shipping."""
    wanted = lines or {"SKU-A": 2, "SKU-B": 1}
    order_lines = [
        {
            "line_id": str(number),
            "sku": sku,
            "quantity": quantity,
            "unit_price": {"amount_minor": 1000, "currency": "EUR"},
            "line_total": {"amount_minor": 1000 * quantity, "currency": "EUR"},
        }
        for number, (sku, quantity) in enumerate(wanted.items(), start=1)
    ]
    subtotal = sum(line["line_total"]["amount_minor"] for line in order_lines)  # type: ignore[index]
    return {
        "channel": channel,
        "external_order_id": external_order_id or f"EXT-{uuid.uuid4().hex[:12]}",
        "customer": {
            "customer_id": "cus_1",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "locale": "fr",
        },
        "lines": order_lines,
        "currency": "EUR",
        "subtotal": {"amount_minor": subtotal, "currency": "EUR"},
        "shipping_charge": {"amount_minor": 490, "currency": "EUR"},
        "total": {"amount_minor": subtotal + 490, "currency": "EUR"},
        "shipping_address": ADDRESS.model_dump(mode="json"),
        "shipping_speed": "standard",
    }


def submitted(fields: dict[str, Any]) -> OrderSubmitted:
    """The submission of `fields` (the contract's JSON fields), submitted now."""
    return OrderSubmitted.model_validate_json(
        json.dumps({**fields, "submitted_at": datetime.now(UTC).isoformat()})
    )


async def place(scene: Scene, lines: dict[str, int] | None = None) -> str:
    """An order placed through the HTTP intake (the quickest way to have one)."""
    response = await scene.client.post(
        "/orders",
        json={**order_fields(lines, channel="b2b"), "placed_by": "rep:jdoe"},
        headers=new_key(),
    )
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    return order_id


def new_key() -> dict[str, str]:
    """A fresh Idempotency-Key header for POST /orders."""
    return {"Idempotency-Key": str(uuid.uuid4())}


def stock_reserved(order_id: str) -> StockReserved:
    return StockReserved(
        order_id=order_id,
        reservation_id=f"res_{order_id}",
        allocations=(Allocation(warehouse_id="wh-paris-1", sku="SKU-A", quantity=2),),
        shipping_address=ADDRESS,
        shipping_speed=ShippingSpeed.STANDARD,
        customer_locale="fr",
    )


def shipment_created(order_id: str, shipment_id: str, lines: dict[str, int]) -> ShipmentCreated:
    return ShipmentCreated(
        order_id=order_id,
        shipment_id=shipment_id,
        warehouse_id="wh-paris-1",
        lines=sku_quantities(lines),
        carrier="colissimo",
        shipping_method="colissimo_standard",
        shipping_cost=eur(600),
        shipping_address=ADDRESS,
    )


def shipped(order_id: str, shipment_id: str, lines: dict[str, int]) -> Shipped:
    return Shipped(
        order_id=order_id,
        shipment_id=shipment_id,
        warehouse_id="wh-paris-1",
        carrier="colissimo",
        tracking_number=f"TRK{shipment_id}",
        lines=sku_quantities(lines),
        shipped_at=datetime.now(UTC),
    )


def delivered(order_id: str, shipment_id: str) -> Delivered:
    return Delivered(
        order_id=order_id,
        shipment_id=shipment_id,
        tracking_number=f"TRK{shipment_id}",
        delivered_at=datetime.now(UTC),
    )


def sku_quantities(lines: dict[str, int]) -> tuple[SkuQuantity, ...]:
    return tuple(SkuQuantity(sku=sku, quantity=quantity) for sku, quantity in lines.items())


def about(order_id: str) -> Callable[[Event], bool]:
    return lambda event: event.subject() == order_id
