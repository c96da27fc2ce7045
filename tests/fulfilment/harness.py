"""A fulfilment service running in the test loop against the real broker and database,
with the events it consumes and helpers to read back what it did."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from contracts.base import Event, OrderEvent
from contracts.catalogue import topic_of
from contracts.events.common import Address, Allocation, ShippingSpeed
from contracts.events.fulfilment import ShipmentCreated
from contracts.events.inventory import StockReserved
from contracts.events.order import (
    CancellationReason,
    OrderCancelled,
    OrderShippingAddressChanged,
)
from contracts.wire import decode, header_map
from services.fulfilment.app import FulfilmentSettings, create_app
from services.kit.runtime import ServiceRuntime
from services.kit.tables import inbox, outbox
from services.kit.topics import TopicNames
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually
from tests.service_harness import events_on, publish_events, running_service, settings_environment

FULFILMENT_TOPIC = topic_of(ShipmentCreated)
WAREHOUSE_COUNTRIES = {"wh-paris": "FR", "wh-berlin": "DE"}
"""What the inventory service's warehouse records say, and so its reservations."""

PARIS = Address(
    name="Ada Lovelace",
    line1="12 rue de la Paix",
    city="Paris",
    postal_code="75002",
    country="FR",
)
LYON = Address(
    name="Ada Lovelace",
    line1="3 place Bellecour",
    city="Lyon",
    postal_code="69002",
    country="FR",
)
BERLIN = Address(
    name="Ada Lovelace",
    line1="Unter den Linden 5",
    city="Berlin",
    postal_code="10117",
    country="DE",
)


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


def stock_reserved(
    order_id: str,
    *allocations: tuple[str, str, int],
    speed: ShippingSpeed = ShippingSpeed.STANDARD,
    address: Address | None = PARIS,
    notes: str | None = None,
    countries: Mapping[str, str] = WAREHOUSE_COUNTRIES,
) -> StockReserved:
    """`address=None`: an order collected in store. `countries={}`: a reservation emitted
    before allocations named their warehouse's country."""
    return StockReserved(
        order_id=order_id,
        reservation_id=f"res_{order_id}",
        allocations=tuple(
            Allocation(
                warehouse_id=warehouse,
                sku=sku,
                quantity=quantity,
                warehouse_country=countries.get(warehouse),
            )
            for warehouse, sku, quantity in allocations
        ),
        shipping_address=address,
        shipping_speed=speed,
        customer_locale="fr",
        notes=notes,
    )


def order_cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id, reason=CancellationReason.CUSTOMER_REQUEST, cancelled_by="customer"
    )


def address_changed(order_id: str, address: Address) -> OrderShippingAddressChanged:
    return OrderShippingAddressChanged(
        order_id=order_id, shipping_address=address, changed_by="agent:jdoe"
    )


@dataclass
class Fulfilment:
    client: httpx.AsyncClient
    runtime: ServiceRuntime
    names: TopicNames
    infrastructure: Infrastructure

    async def publish(self, *events: Event) -> None:
        await publish_events(self.infrastructure, self.names, *events)

    async def handled(self, *events: Event, timeout: float = 30.0) -> None:
        """Waits until the service has consumed these events (their ids are in its inbox)."""
        wanted = [event.event_id for event in events]

        async def all_in_inbox() -> bool:
            async with self.runtime.engine.connect() as connection:
                found = await connection.scalar(
                    select(func.count()).select_from(inbox).where(inbox.c.event_id.in_(wanted))
                )
            return found == len(wanted)

        await eventually(all_in_inbox, timeout=timeout)

    async def published(self, order_id: str) -> list[OrderEvent]:
        """Every event the service has emitted about the order, read back from the topic
        once its outbox is drained (so none is still on its way)."""
        topic = self.names.physical(FULFILMENT_TOPIC)

        async def drained() -> bool:
            async with self.runtime.engine.connect() as connection:
                unsent = await connection.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )
            return unsent == 0

        await eventually(drained)
        async with self.runtime.engine.connect() as connection:
            total = await connection.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.topic == topic)
            )
        events = await events_on(
            self.infrastructure,
            self.names,
            FULFILMENT_TOPIC,
            expect=total or 0,
            where=lambda event: isinstance(event, OrderEvent) and event.order_id == order_id,
        )
        return [event for event in events if isinstance(event, OrderEvent)]

    async def recorded(self, order_id: str) -> list[OrderEvent]:
        """Every event the service has recorded about the order, in the order recorded
        (its outbox, sent or not)."""
        async with self.runtime.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(outbox.c.headers, outbox.c.value)
                    .where(outbox.c.key == order_id)
                    .order_by(outbox.c.id)
                )
            ).all()
        events = [decode(header_map(row.headers), row.value) for row in rows]
        return [event for event in events if isinstance(event, OrderEvent)]

    async def shipments(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.client.get("/shipments", params={"order_id": order_id})
        assert response.status_code == 200, response.text
        shipments: list[dict[str, Any]] = response.json()
        return shipments

    async def shipment(self, shipment_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/shipments/{shipment_id}")
        assert response.status_code == 200, response.text
        shipment: dict[str, Any] = response.json()
        return shipment

    async def shipment_in(self, order_id: str, warehouse_id: str) -> dict[str, Any]:
        return next(
            shipment
            for shipment in await self.shipments(order_id)
            if shipment["warehouse_id"] == warehouse_id
        )


def fulfilment_settings(
    infrastructure: Infrastructure, names: TopicNames, database_url: str, **overrides: Any
) -> FulfilmentSettings:
    return FulfilmentSettings(
        **settings_environment(infrastructure, names, database_url), **overrides
    )


@contextlib.asynccontextmanager
async def running_fulfilment(
    infrastructure: Infrastructure, names: TopicNames, database_url: str, **overrides: Any
) -> AsyncIterator[Fulfilment]:
    app = create_app(fulfilment_settings(infrastructure, names, database_url, **overrides))
    async with running_service(app) as client:
        yield Fulfilment(client, app.state.runtime, names, infrastructure)
