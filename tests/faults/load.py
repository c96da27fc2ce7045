"""The load the faults hit: a catalogue with known initial stock, a stream of channel
orders at a fixed arrival rate on the inbound topic, and customer service cancelling some
orders and returning part of some delivered ones over the HTTP APIs.

Nothing here gives up on an order because the system is down: a channel record is sent
again (same event id) on a fresh producer until the broker acknowledges it, and an HTTP
call is retried on connection errors and 5xx answers for a bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts.events.channel import OrderSubmitted
from contracts.wire import encode
from services.kit.logs import get_logger
from tests.e2e.flow import WAREHOUSES, channel_order
from tests.faults.system import FaultySystem

log = get_logger(__name__)

TERMINAL_STATUSES = frozenset(
    {"delivered", "cancelled", "rejected", "returned", "partially_returned"}
)
HTTP_RETRY_SECONDS = 120.0
SEND_RETRY_SECONDS = 300.0
CANCEL_EVERY = 10
RETURN_EVERY = 8


@dataclass(frozen=True)
class Budget:
    name: str
    orders: int
    orders_per_second: float
    rounds: int
    """how many times each fault is injected"""
    drain_timeout: float
    duplicates: int
    """records re-published byte for byte per round"""


BUDGETS = {
    "short": Budget("short", 150, 2.5, 1, 240.0, 40),
    "long": Budget("long", 2000, 8.0, 3, 600.0, 200),
}


@dataclass(frozen=True)
class StockPlan:
    """The catalogue and its initial stock: {sku: {warehouse: units}}. The scarce SKUs
    run out during the run, so some orders fail their reservation."""

    initial: dict[str, dict[str, int]]
    plentiful: tuple[str, ...]
    scarce: tuple[str, ...]

    @classmethod
    def for_orders(cls, run_id: str, orders: int) -> StockPlan:
        plentiful = tuple(f"FLT-{run_id}-{name}" for name in ("LAMP", "MUG", "CHAIR", "RUG"))
        scarce = tuple(f"FLT-{run_id}-{name}" for name in ("CLOCK", "VASE"))
        warehouses = list(WAREHOUSES)
        # Every order takes at most three units of at most two plentiful SKUs; a third of
        # that per warehouse leaves room for splits across warehouses.
        initial: dict[str, dict[str, int]] = {
            sku: dict.fromkeys(warehouses, orders) for sku in plentiful
        }
        initial[scarce[0]] = {"wh-paris": max(3, orders // 20)}
        initial[scarce[1]] = {"wh-lyon": max(2, orders // 30), "wh-berlin": max(2, orders // 30)}
        return cls(initial=initial, plentiful=plentiful, scarce=scarce)


@dataclass
class PlannedOrder:
    number: int
    submission: OrderSubmitted
    cancel: bool
    return_first_line: bool
    event_id: UUID | None = None
    acknowledged_at: float | None = None
    send_attempts: int = 0

    @property
    def external_order_id(self) -> str:
        return self.submission.external_order_id

    @property
    def lines(self) -> list[tuple[str, int]]:
        return [(line.sku, line.quantity) for line in self.submission.lines]


def plan_orders(run_id: str, stock: StockPlan, count: int, seed: int = 6) -> list[PlannedOrder]:
    """Deterministic orders: one or two plentiful lines, one in six with a scarce SKU; every
    tenth is cancelled by the customer, every eighth returned in part once delivered
    (its first line has two units so one can be restocked and one written off)."""
    chooser = random.Random(seed)
    planned: list[PlannedOrder] = []
    for number in range(count):
        will_return = number % RETURN_EVERY == 5
        skus = chooser.sample(stock.plentiful, chooser.choice((1, 2)))
        if number % 6 == 1 and not will_return:
            skus.append(chooser.choice(stock.scarce))
        lines = [(sku, chooser.randint(1, 3)) for sku in skus]
        if will_return:
            lines[0] = (lines[0][0], 2)
        submission = channel_order(
            lines,
            locale=chooser.choice(("en", "fr")),
            external_order_id=f"load-{run_id}-{number:05d}",
        )
        planned.append(
            PlannedOrder(
                number=number,
                submission=submission,
                cancel=number % CANCEL_EVERY == 3,
                return_first_line=will_return,
            )
        )
    return planned


async def http_call(
    system: FaultySystem,
    service: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    retry_seconds: float = HTTP_RETRY_SECONDS,
) -> httpx.Response:
    """One HTTP call that outlives a service restart or a database outage: retried on a
    transport error or a 5xx answer, for a bounded time. Only for calls that are safe to
    repeat (reads, or commands whose repetition is refused with a 4xx)."""
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            async with system.client(service) as client:
                answer = await client.request(method, path, json=json, params=params)
            if answer.status_code < 500:
                return answer
            failure = f"{answer.status_code} {answer.text[:200]}"
        except httpx.TransportError as error:
            failure = repr(error)
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} {service}{path} kept failing: {failure}")
        await asyncio.sleep(0.5)


async def seed_catalogue(system: FaultySystem, stock: StockPlan) -> None:
    for warehouse, (country, latitude, longitude) in WAREHOUSES.items():
        answer = await http_call(
            system,
            "inventory",
            "PUT",
            f"/warehouses/{warehouse}",
            json={
                "name": warehouse,
                "country": country,
                "latitude": latitude,
                "longitude": longitude,
            },
        )
        assert answer.status_code in (200, 201), answer.text
    for sku, per_warehouse in stock.initial.items():
        answer = await http_call(
            system, "order", "PUT", f"/products/{sku}", json={"name": sku, "active": True}
        )
        assert answer.status_code == 200, answer.text
        for warehouse, units in per_warehouse.items():
            answer = await http_call(
                system,
                "inventory",
                "POST",
                "/stock/receipts",
                # The reference makes a repeated receipt a no-op.
                json={
                    "sku": sku,
                    "warehouse_id": warehouse,
                    "quantity": units,
                    "reference": f"initial-{sku}-{warehouse}",
                },
            )
            assert answer.status_code in (200, 201), answer.text


class ChannelPublisher:
    """Publishes channel records with acks=all and idempotence; a failed send is retried
    with the same record (same event id) on a new producer until acknowledged, because a
    stalled idempotent producer does not recover by itself (aiokafka #1017)."""

    def __init__(self, bootstrap: str, *, max_request_size: int = 1024 * 1024) -> None:
        self._bootstrap = bootstrap
        self._max_request_size = max_request_size
        self._producer: AIOKafkaProducer | None = None
        self.recreated = 0

    async def _current(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                enable_idempotence=True,
                max_request_size=self._max_request_size,
                request_timeout_ms=15_000,
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=10)
        self.recreated += 1

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        partition: int | None = None,
    ) -> tuple[int, int, int]:
        """Returns (partition, offset, attempts) once the broker has the record."""
        deadline = time.monotonic() + SEND_RETRY_SECONDS
        attempts = 0
        while True:
            attempts += 1
            try:
                producer = await self._current()
                sent = await asyncio.wait_for(
                    producer.send_and_wait(
                        topic, value=value, key=key, headers=headers, partition=partition
                    ),
                    timeout=30,
                )
                return sent.partition, sent.offset, attempts
            except (KafkaError, TimeoutError, OSError) as error:
                log.warning("channel send failed; retrying on a new producer", error=repr(error))
                await self._discard()
                if time.monotonic() > deadline:
                    raise AssertionError(f"{topic}: not acknowledged: {error!r}") from error
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


@dataclass
class CustomerActions:
    cancel_answers: dict[str, int] = field(default_factory=dict)
    """external order id → HTTP status of its cancellation (200, or 409 once shipped)"""
    cancel_skipped: dict[str, str] = field(default_factory=dict)
    """external order id → status that made a cancellation pointless (rejected, …)"""
    returns_completed: dict[str, str] = field(default_factory=dict)
    """external order id → return id, received with a partial restock"""
    returns_refused: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class Workload:
    """The order stream and customer service, running in the background while faults
    are injected; `orders` is every order planned, each with its acknowledgement."""

    system: FaultySystem
    budget: Budget
    run_id: str
    stock: StockPlan
    orders: list[PlannedOrder]
    actions: CustomerActions = field(default_factory=CustomerActions)
    publisher: ChannelPublisher | None = None
    statuses: dict[str, tuple[str, str]] = field(default_factory=dict)
    """external order id → (order id, status), as last read from the order database"""
    _pending_actions: set[str] = field(default_factory=set)
    _stream_task: asyncio.Task[None] | None = None
    started_at: float = 0.0

    @classmethod
    def plan(cls, system: FaultySystem, budget: Budget) -> Workload:
        run_id = system.names.namespace[-6:]
        stock = StockPlan.for_orders(run_id, budget.orders)
        orders = plan_orders(run_id, stock, budget.orders)
        workload = cls(system=system, budget=budget, run_id=run_id, stock=stock, orders=orders)
        workload._pending_actions = {
            order.external_order_id for order in orders if order.cancel or order.return_first_line
        }
        return workload

    @property
    def acknowledged(self) -> int:
        return sum(1 for order in self.orders if order.acknowledged_at is not None)

    async def wait_acknowledged(self, count: int, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acknowledged < min(count, len(self.orders)):
            if self._stream_task is not None and self._stream_task.done():
                await self._stream_task  # raises what stopped the stream
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.acknowledged} of {count} orders sent")
            await asyncio.sleep(0.2)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Workload]:
        """Streams the orders and acts as customer service while the block runs; at its
        end the stream must have finished, and customer service stops."""
        self.publisher = ChannelPublisher(self.system.bootstrap)
        stream = asyncio.create_task(self._stream(), name="order-stream")
        self._stream_task = stream
        customer = asyncio.create_task(self._customer_service(), name="customer-service")
        try:
            yield self
            await stream  # surfaces a send that was never acknowledged
        finally:
            stream.cancel()
            customer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream
            with contextlib.suppress(asyncio.CancelledError):
                await customer
            await self.publisher.close()

    @property
    def pending_actions(self) -> set[str]:
        return set(self._pending_actions)

    async def _stream(self) -> None:
        assert self.publisher is not None
        topic = self.system.names.of_event(OrderSubmitted)
        started = self.started_at = time.monotonic()
        for order in self.orders:
            due = started + order.number / self.budget.orders_per_second
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            record = encode(order.submission, source="/faults/webshop")
            order.event_id = order.submission.event_id
            _, _, order.send_attempts = await self.publisher.send(
                topic, key=record.key, value=record.value, headers=record.headers
            )
            order.acknowledged_at = time.monotonic()

    async def wait_stream(self) -> None:
        """Until every order is acknowledged by the broker (or the stream failed)."""
        assert self._stream_task is not None, "the workload is not running"
        await asyncio.shield(self._stream_task)

    async def refresh_statuses(self) -> dict[str, tuple[str, str]]:
        connection = await asyncpg.connect(self.system.database_urls["order"], timeout=5)
        try:
            rows = await connection.fetch(
                "SELECT external_order_id, order_id, status FROM orders "
                "WHERE external_order_id LIKE $1",
                f"load-{self.run_id}-%",
            )
        finally:
            await connection.close()
        self.statuses = {row["external_order_id"]: (row["order_id"], row["status"]) for row in rows}
        return self.statuses

    async def _customer_service(self) -> None:
        by_external = {order.external_order_id: order for order in self.orders}
        in_flight: set[asyncio.Task[None]] = set()
        started: set[str] = set()
        while True:
            try:
                statuses = await self.refresh_statuses()
            except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                log.info("order database unreadable for now", error=repr(error))
                await asyncio.sleep(1.0)
                continue
            for external_id in self._pending_actions - started:
                if external_id not in statuses:
                    continue
                order_id, status = statuses[external_id]
                order = by_external[external_id]
                action = self._action_for(order, order_id, status)
                if action is not None:
                    started.add(external_id)
                    task = asyncio.create_task(action)
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
            await asyncio.sleep(0.2)

    def _action_for(self, order: PlannedOrder, order_id: str, status: str) -> Any:
        if order.cancel:
            if status in ("cancelled", "rejected"):
                self.actions.cancel_skipped[order.external_order_id] = status
                self._pending_actions.discard(order.external_order_id)
                return None
            # As soon as the customer sees the order (placed or confirmed): fulfilment in
            # automatic mode ships within half a second, so later would only ever be 409.
            return self._cancel(order, order_id)
        if status in ("cancelled", "rejected"):
            self.actions.returns_refused[order.external_order_id] = f"order {status}"
            self._pending_actions.discard(order.external_order_id)
            return None
        if status == "delivered":
            return self._return_first_line(order, order_id)
        return None

    async def _cancel(self, order: PlannedOrder, order_id: str) -> None:
        try:
            answer = await http_call(
                self.system,
                "order",
                "POST",
                f"/orders/{order_id}/cancel",
                json={"reason": "customer_request", "cancelled_by": "faults-customer"},
            )
            self.actions.cancel_answers[order.external_order_id] = answer.status_code
            if answer.status_code not in (200, 409):
                self.actions.errors.append(f"cancel {order_id}: {answer.status_code} {answer.text}")
        except AssertionError as error:
            self.actions.errors.append(str(error))
        finally:
            self._pending_actions.discard(order.external_order_id)

    async def _return_first_line(self, order: PlannedOrder, order_id: str) -> None:
        sku, quantity = order.lines[0]
        try:
            await self._wait_delivery_known_to_returns(order_id)
            return_id = await self._request_return(order_id, sku, quantity)
            if return_id is None:
                self.actions.returns_refused[order.external_order_id] = "refused"
                return
            received = await self._receive(return_id, sku, quantity)
            if received.status_code == 200 or await self._return_completed(return_id):
                self.actions.returns_completed[order.external_order_id] = return_id
            else:
                self.actions.errors.append(
                    f"receive {return_id}: {received.status_code} {received.text}"
                )
        except AssertionError as error:
            self.actions.errors.append(str(error))
        finally:
            self._pending_actions.discard(order.external_order_id)

    async def _receive(self, return_id: str, sku: str, quantity: int) -> httpx.Response:
        """Receipt of the parcel, asked again while the returns service answers that it has
        not yet heard the order's prices: after a restart it may be behind on the order
        topic while already current on deliveries, and the refusal says to try again."""
        deadline = time.monotonic() + HTTP_RETRY_SECONDS
        body = {"lines": [{"sku": sku, "quantity": quantity, "restockable_quantity": quantity - 1}]}
        while True:
            answer = await http_call(
                self.system, "returns", "POST", f"/returns/{return_id}/receive", json=body
            )
            not_yet = answer.status_code == 409 and answer.json()["code"] == "order_prices_unknown"
            if not not_yet or time.monotonic() > deadline:
                return answer
            await asyncio.sleep(0.5)

    async def _request_return(self, order_id: str, sku: str, quantity: int) -> str | None:
        """POST /returns is not idempotent: after an answer lost in transit, the return
        may exist already, so look before asking again."""
        deadline = time.monotonic() + HTTP_RETRY_SECONDS
        body = {
            "order_id": order_id,
            "lines": [{"sku": sku, "quantity": quantity, "reason_code": "damaged"}],
        }
        while True:
            existing = await http_call(
                self.system, "returns", "GET", "/returns", params={"order_id": order_id}
            )
            for rma in existing.json():
                if rma["status"] != "rejected":
                    return str(rma["return_id"])
            try:
                async with self.system.client("returns") as client:
                    answer = await client.post("/returns", json=body)
                if answer.status_code == 201:
                    view = answer.json()
                    return None if view["status"] == "rejected" else str(view["return_id"])
                if answer.status_code < 500:
                    self.actions.errors.append(f"return {order_id}: {answer.status_code}")
                    return None
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"return of {order_id} kept failing")
            await asyncio.sleep(0.5)

    async def _wait_delivery_known_to_returns(self, order_id: str) -> None:
        """The order service may see the delivery before the returns service does (each
        consumes it on its own); a request made in between is rightly rejected."""
        deadline = time.monotonic() + HTTP_RETRY_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                connection = await asyncpg.connect(self.system.database_urls["returns"], timeout=5)
                try:
                    if await connection.fetchval(
                        "SELECT count(*) FROM deliveries WHERE order_id = $1", order_id
                    ):
                        return
                finally:
                    await connection.close()
            await asyncio.sleep(0.5)

    async def _return_completed(self, return_id: str) -> bool:
        answer = await http_call(self.system, "returns", "GET", f"/returns/{return_id}")
        return answer.status_code == 200 and answer.json()["status"] == "completed"
