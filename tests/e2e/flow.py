"""Steps of the post-purchase flow as a channel, a warehouse and customer service would
take them, against the running system over its real interfaces."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.base import Event, Money
from contracts.events.channel import OrderSubmitted
from contracts.events.common import Address, Customer, OrderLine, ShippingSpeed
from contracts.wire import decode, header_map
from tests.e2e.system import System
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually, group_caught_up, read_to_end
from tests.service_harness import publish_events

WAREHOUSES = {
    "wh-paris": ("FR", 48.85, 2.35),
    "wh-lyon": ("FR", 45.76, 4.84),
    "wh-berlin": ("DE", 52.52, 13.40),
}
UNIT_PRICE = 2_500


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def seed_catalogue(system: System, stock: dict[str, dict[str, int]]) -> None:
    """Warehouses, the SKUs as products, and stock: {sku: {warehouse: units}}."""
    async with system.client("inventory") as inventory, system.client("order") as order:
        for warehouse, (country, latitude, longitude) in WAREHOUSES.items():
            answer = await inventory.put(
                f"/warehouses/{warehouse}",
                json={
                    "name": warehouse,
                    "country": country,
                    "latitude": latitude,
                    "longitude": longitude,
                },
            )
            assert answer.status_code in (200, 201), answer.text
        for sku, per_warehouse in stock.items():
            answer = await order.put(f"/products/{sku}", json={"name": sku, "active": True})
            assert answer.status_code == 200, answer.text
            for warehouse, units in per_warehouse.items():
                answer = await inventory.post(
                    "/stock/receipts",
                    json={
                        "sku": sku,
                        "warehouse_id": warehouse,
                        "quantity": units,
                        "reference": unique("receipt"),
                    },
                )
                assert answer.status_code == 201, answer.text


def channel_order(
    lines: Sequence[tuple[str, int]], *, locale: str = "fr", external_order_id: str | None = None
) -> OrderSubmitted:
    order_lines = tuple(
        OrderLine(
            line_id=f"l{number}",
            sku=sku,
            quantity=quantity,
            unit_price=Money(amount_minor=UNIT_PRICE, currency="EUR"),
            line_total=Money(amount_minor=UNIT_PRICE * quantity, currency="EUR"),
        )
        for number, (sku, quantity) in enumerate(lines, start=1)
    )
    subtotal = sum(line.line_total.amount_minor for line in order_lines)
    shipping = 590
    return OrderSubmitted(
        channel="webshop",
        external_order_id=external_order_id or unique("ext"),
        customer=Customer(
            customer_id=unique("cus"),
            email=f"{unique('customer')}@example.com",
            name="Camille Martin",
            locale=locale,
        ),
        lines=order_lines,
        currency="EUR",
        subtotal=Money(amount_minor=subtotal, currency="EUR"),
        shipping_charge=Money(amount_minor=shipping, currency="EUR"),
        total=Money(amount_minor=subtotal + shipping, currency="EUR"),
        shipping_address=Address(
            name="Camille Martin",
            line1="12 rue de la Paix",
            city="Paris",
            postal_code="75002",
            country="FR",
        ),
        shipping_speed=ShippingSpeed.STANDARD,
        submitted_at=datetime.now(UTC),
    )


@dataclass
class Flow:
    system: System
    infrastructure: Infrastructure

    async def submit(self, order: OrderSubmitted) -> str:
        """Publish on the inbound topic as a channel adapter would; returns the order id."""
        await publish_events(self.infrastructure, self.system.names, order, source="/webshop")
        return await self.order_id_of(order)

    async def order_id_of(self, order: OrderSubmitted) -> str:
        found: list[str] = []

        async def known() -> bool:
            async with self.system.client("order") as client:
                answer = await client.get(
                    "/orders",
                    params={"channel": order.channel, "external_order_id": order.external_order_id},
                )
            found[:] = [summary["order_id"] for summary in answer.json()["items"]]
            return bool(found)

        await eventually(known, timeout=30)
        assert len(found) == 1, f"one order per channel order, found {found}"
        return found[0]

    async def order(self, order_id: str) -> dict[str, Any]:
        async with self.system.client("order") as client:
            answer = await client.get(f"/orders/{order_id}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view

    async def wait_status(self, order_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        latest: dict[str, Any] = {}

        async def reached() -> bool:
            latest.update(await self.order(order_id))
            return bool(latest["status"] == status)

        try:
            await eventually(reached, timeout=timeout)
        except AssertionError:
            raise AssertionError(
                f"order {order_id} is {latest.get('status')!r}, not {status!r}"
            ) from None
        return latest

    async def shipments(self, order_id: str, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        async def created() -> bool:
            async with self.system.client("fulfilment") as client:
                answer = await client.get("/shipments", params={"order_id": order_id})
            found[:] = answer.json()
            return len(found) >= count

        await eventually(created, timeout=30)
        return found

    async def shipments_now(self, order_id: str) -> list[dict[str, Any]]:
        async with self.system.client("fulfilment") as client:
            answer = await client.get("/shipments", params={"order_id": order_id})
        shipments: list[dict[str, Any]] = answer.json()
        return shipments

    async def ship(self, shipment_id: str) -> dict[str, Any]:
        async with self.system.client("fulfilment") as client:
            for step in ("pick", "pack", "ship"):
                answer = await client.post(f"/shipments/{shipment_id}/{step}")
                assert answer.status_code == 200, f"{step}: {answer.text}"
        shipped: dict[str, Any] = answer.json()
        return shipped

    async def deliver(self, tracking_number: str) -> None:
        async with self.system.client("fulfilment") as client:
            answer = await client.post(
                "/carrier/tracking",
                json={"tracking_number": tracking_number, "status": "delivered"},
            )
        assert answer.status_code == 200, answer.text

    async def stock(self, sku: str) -> dict[str, Any]:
        async with self.system.client("inventory") as client:
            answer = await client.get(f"/stock/{sku}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view

    async def wait_stock(self, sku: str, timeout: float = 30, **expected: int) -> dict[str, Any]:
        """The SKU's stock once its figures are as expected. Inventory moves stock when it
        consumes a fact (Shipped commits it), which may be after the order service has
        already moved on to a later status."""
        latest: dict[str, Any] = {}

        async def reached() -> bool:
            latest.update(await self.stock(sku))
            return all(latest[name] == value for name, value in expected.items())

        try:
            await eventually(reached, timeout=timeout)
        except AssertionError:
            seen = {name: latest.get(name) for name in expected}
            raise AssertionError(f"stock of {sku} is {seen}, not {expected}") from None
        return latest

    async def wait_consumed(self, service: str, topic: str, timeout: float = 30) -> None:
        """Until the service has applied every record on a catalogue topic so far: what a
        command to that service is checked against must have reached it first."""
        names = self.system.names

        async def caught_up() -> bool:
            return await group_caught_up(
                self.infrastructure.kafka_bootstrap_servers,
                names.consumer_group(service),
                names.physical(topic),
            )

        await eventually(caught_up, timeout=timeout, interval=0.3)

    async def events_of(self, order_id: str, topic: str) -> list[Event]:
        """The order's events on a catalogue topic, in the order they were published."""
        records = await read_to_end(
            self.infrastructure.kafka_bootstrap_servers, self.system.names.physical(topic)
        )
        return [
            decode(header_map(record.headers), record.value)
            for record in records
            if record.key == order_id.encode()
        ]

    async def event_types_of(self, order_id: str, topic: str) -> list[str]:
        return [type(event).__name__ for event in await self.events_of(order_id, topic)]

    async def wait_event_types(
        self, order_id: str, topic: str, expected: list[str], timeout: float = 20
    ) -> None:
        seen: list[str] = []

        async def published() -> bool:
            seen[:] = await self.event_types_of(order_id, topic)
            return seen == expected

        try:
            await eventually(published, timeout=timeout)
        except AssertionError:
            raise AssertionError(f"{topic} for {order_id}: {seen}, expected {expected}") from None
