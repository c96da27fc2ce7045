"""The benchmark's orders: a catalogue with stock that never runs out (every order is
meant to complete its flow), deterministic web-shop orders, and the open-loop sender that
publishes them on the inbound topic at a fixed arrival rate."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer

from bench.analysis import due_offset, orders_due
from contracts.base import Money
from contracts.events.channel import OrderSubmitted
from contracts.events.common import Address, Customer, OrderLine, ShippingSpeed
from contracts.wire import Record, encode

CHANNEL = "webshop"
SOURCE = "/bench/webshop"


@dataclass(frozen=True)
class Warehouse:
    warehouse_id: str
    country: str
    latitude: float
    longitude: float


WAREHOUSES = (
    Warehouse("wh-paris", "FR", 48.95, 2.38),
    Warehouse("wh-lyon", "FR", 45.70, 4.94),
    Warehouse("wh-berlin", "DE", 52.39, 13.52),
)
# Customers in two countries, so reservations (row locks) spread over two warehouses.
DESTINATIONS = (
    Address(
        name="Camille Martin",
        line1="12 rue de la Paix",
        city="Paris",
        postal_code="75002",
        country="FR",
    ),
    Address(
        name="Jonas Weber",
        line1="Unter den Linden 5",
        city="Berlin",
        postal_code="10117",
        country="DE",
    ),
)
SKUS_IN_CATALOGUE = 8
UNITS_PER_WAREHOUSE = 1_000_000
"""The largest single receipt: with at most two units of a SKU per order, enough for half
a million orders per SKU and warehouse."""
UNIT_PRICE_MINOR = 2_500
SHIPPING_MINOR = 590


def catalogue(run_id: str) -> tuple[str, ...]:
    return tuple(f"BENCH-{run_id}-{number}" for number in range(SKUS_IN_CATALOGUE))


async def seed_catalogue(order_url: str, inventory_url: str, skus: tuple[str, ...]) -> None:
    """Warehouses, the SKUs as orderable products, and plenty of stock of each SKU in
    every warehouse, over the services' HTTP APIs."""
    async with (
        httpx.AsyncClient(base_url=inventory_url, timeout=30.0) as inventory,
        httpx.AsyncClient(base_url=order_url, timeout=30.0) as order,
    ):
        for warehouse in WAREHOUSES:
            answer = await inventory.put(
                f"/warehouses/{warehouse.warehouse_id}",
                json={
                    "name": warehouse.warehouse_id,
                    "country": warehouse.country,
                    "latitude": warehouse.latitude,
                    "longitude": warehouse.longitude,
                },
            )
            answer.raise_for_status()
        for sku in skus:
            answer = await order.put(f"/products/{sku}", json={"name": sku, "active": True})
            answer.raise_for_status()
            for warehouse in WAREHOUSES:
                answer = await inventory.post(
                    "/stock/receipts",
                    json={
                        "sku": sku,
                        "warehouse_id": warehouse.warehouse_id,
                        "quantity": UNITS_PER_WAREHOUSE,
                        "reference": f"bench-{sku}-{warehouse.warehouse_id}",
                    },
                )
                answer.raise_for_status()


def external_order_id(run_id: str, phase: str, number: int) -> str:
    return f"bench-{run_id}-{phase}-{number:07d}"


def phase_of(external_id: str) -> str:
    """The phase an order belongs to, read back from its external order id."""
    return external_id.split("-")[2]


def make_order(run_id: str, phase: str, number: int, skus: tuple[str, ...]) -> OrderSubmitted:
    """A web-shop order of one or two lines (every third has two), one or two units each,
    going to Paris or Berlin: the same mix on every run."""
    line_count = 2 if number % 3 == 0 else 1
    lines = tuple(
        OrderLine(
            line_id=str(position + 1),
            sku=skus[(number + position * 3) % len(skus)],
            quantity=1 + (number + position) % 2,
            unit_price=Money(amount_minor=UNIT_PRICE_MINOR, currency="EUR"),
            line_total=Money(
                amount_minor=UNIT_PRICE_MINOR * (1 + (number + position) % 2), currency="EUR"
            ),
        )
        for position in range(line_count)
    )
    subtotal = sum(line.line_total.amount_minor for line in lines)
    customer_id = f"cus-{run_id}-{phase}-{number}"
    return OrderSubmitted(
        channel=CHANNEL,
        external_order_id=external_order_id(run_id, phase, number),
        customer=Customer(
            customer_id=customer_id,
            email=f"{customer_id}@example.com",
            name="Bench Customer",
            locale="fr" if number % 2 else "en",
        ),
        lines=lines,
        currency="EUR",
        subtotal=Money(amount_minor=subtotal, currency="EUR"),
        shipping_charge=Money(amount_minor=SHIPPING_MINOR, currency="EUR"),
        total=Money(amount_minor=subtotal + SHIPPING_MINOR, currency="EUR"),
        shipping_address=DESTINATIONS[number % len(DESTINATIONS)],
        shipping_speed=ShippingSpeed.STANDARD,
        submitted_at=datetime.now(UTC),
    )


def submission_record(order: OrderSubmitted) -> Record:
    """The order's record, its external order id as the correlation id: the order service
    carries that id to OrderPlaced or OrderRejected, which is how the observer learns
    which order id a submission became without reading any event's body."""
    return encode(order, source=SOURCE, correlation_id=order.external_order_id)


SubmittedCallback = Callable[[str, float], None]
"""(external order id, due time in wall-clock seconds) of every order handed to Kafka."""


class OpenLoopSender:
    """Publishes orders at a fixed arrival rate. Each order is due at start + n / rate and
    is sent then, whatever happened to the orders before it; the due time, not the send
    time, is when the order counts as submitted, so a sender that falls behind shows up
    in the latencies instead of hiding them."""

    def __init__(self, bootstrap: str, topic: str, on_submitted: SubmittedCallback) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._on_submitted = on_submitted
        self._producer: AIOKafkaProducer | None = None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[OpenLoopSender]:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        self._producer = producer
        try:
            yield self
        finally:
            self._producer = None
            await producer.stop()

    async def send(
        self,
        orders: Iterator[OrderSubmitted],
        *,
        rate: float,
        count: int | None,
        stop: asyncio.Event | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Sends `count` orders from `orders` (when None: until `stop` is set); returns how
        many were sent once the broker has acknowledged every one."""
        assert self._producer is not None, "open() the sender first"
        started = time.monotonic()
        wall_started = time.time()
        deliveries: list[asyncio.Future[object]] = []
        sent = 0
        while (count is None or sent < count) and not (stop is not None and stop.is_set()):
            due = orders_due(time.monotonic() - started, rate, count)
            while sent < due:
                order = next(orders, None)
                if order is None:
                    count = sent
                    break
                record = submission_record(order)
                deliveries.append(
                    await self._producer.send(
                        self._topic, value=record.value, key=record.key, headers=record.headers
                    )
                )
                # Counted once it is in the producer's hands, never before.
                self._on_submitted(order.external_order_id, wall_started + due_offset(sent, rate))
                sent += 1
            if on_progress is not None:
                on_progress(sent)
            pause = started + due_offset(sent, rate) - time.monotonic()
            await asyncio.sleep(max(pause, 0.0))
        # A delivery that failed raises here.
        await asyncio.gather(*deliveries)
        return sent


def order_stream(run_id: str, phase: str, skus: tuple[str, ...]) -> Iterator[OrderSubmitted]:
    number = 0
    while True:
        yield make_order(run_id, phase, number, skus)
        number += 1
