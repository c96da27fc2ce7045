"""No oversell: two inventory replicas, as separate OS processes in one consumer group,
reserve the same scarce SKUs for orders arriving on different partitions at once, and
available stock never goes below zero; every unit reserved is accounted for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.base import Event
from contracts.events.inventory import StockReservationFailed, StockReserved
from contracts.wire import decode, encode, header_map
from services.kit.topics import TopicNames
from tests.infrastructure import REPO, Infrastructure
from tests.inventory.factories import order_placed, unique
from tests.kafka_tools import eventually, publish, read_all
from tests.service_harness import fresh_namespace

pytestmark = pytest.mark.integration

REPLICAS = 2
ORDERS = 200
UNITS_PER_ROW = 10
WAREHOUSES = {
    "wh-lyon": {"name": "Lyon", "country": "FR", "latitude": 45.76, "longitude": 4.84},
    "wh-hamburg": {"name": "Hamburg", "country": "DE", "latitude": 53.55, "longitude": 9.99},
}
ANSWERS = (StockReserved, StockReservationFailed)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Replica:
    def __init__(self, name: str, process: subprocess.Popen[bytes], port: int, log: Path):
        self.name = name
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def handled_orders(self) -> int:
        """Orders this replica answered, from its JSON log lines."""
        answered = 0
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") in {
                    "stock reserved",
                    "stock reservation failed",
                }:
                    answered += 1
        return answered

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_replica(
    name: str, infrastructure: Infrastructure, names: TopicNames, database_url: str, logs: Path
) -> Replica:
    port = free_port()
    log = logs / f"{name}.log"
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap_servers,
        "OMS_TOPIC_NAMESPACE": names.namespace,
        "INVENTORY_DATABASE_URL": database_url,
        "OMS_HTTP_PORT": str(port),
        "OMS_LOG_JSON": "true",
        "OMS_RELAY_IDLE_SECONDS": "0.1",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.inventory"],
            cwd=REPO,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(name, process, port, log)


async def wait_healthy(replica: Replica, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=replica.url, timeout=5.0) as client:
        while True:
            if replica.process.poll() is not None:
                raise AssertionError(f"{replica.name} exited:\n{replica.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{replica.name} not healthy:\n{replica.log_tail()}")
            await asyncio.sleep(0.3)


@contextlib.contextmanager
def replicas_stopped_at_exit() -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


async def publish_all(
    infrastructure: Infrastructure, names: TopicNames, events: Sequence[Event]
) -> None:
    """One producer for the lot: the orders arrive as a burst, not one by one."""
    records = [encode(event, source="/test") for event in events]
    await publish(
        infrastructure.kafka_bootstrap_servers,
        names.of_event(type(events[0])),
        [(record.key, record.value, record.headers) for record in records],
    )


async def answers_by_order(infrastructure: Infrastructure, names: TopicNames) -> list[Event]:
    records = await read_all(
        infrastructure.kafka_bootstrap_servers,
        names.physical("oms.inventory.v1"),
        expect=1,
        timeout=5,
    )
    events = [decode(header_map(record.headers), record.value) for record in records]
    return [event for event in events if isinstance(event, ANSWERS)]


async def test_two_replicas_never_oversell_scarce_stock(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("inventory_oversell")
    skus = [unique("SCARCE") for _ in range(3)]

    with replicas_stopped_at_exit() as replicas:
        for number in range(REPLICAS):
            replicas.append(
                start_replica(f"replica-{number}", infrastructure, names, database_url, tmp_path)
            )
        await asyncio.gather(*(wait_healthy(replica) for replica in replicas))

        async with httpx.AsyncClient(base_url=replicas[0].url, timeout=10.0) as client:
            for warehouse_id, body in WAREHOUSES.items():
                answer = await client.put(f"/warehouses/{warehouse_id}", json=body)
                assert answer.status_code == 201, answer.text
                for sku in skus:
                    answer = await client.post(
                        "/stock/receipts",
                        json={
                            "sku": sku,
                            "warehouse_id": warehouse_id,
                            "quantity": UNITS_PER_ROW,
                            "reference": unique("po"),
                        },
                    )
                    assert answer.status_code == 201, answer.text

        # Until both replicas have partitions, one could answer everything alone: send
        # orders for a SKU nobody stocks (answered with a failure) until each replica
        # has answered one.
        warm_up: list[str] = []

        async def both_consuming() -> bool:
            batch = [order_placed(unique("warm"), {"NOT-STOCKED": 1}) for _ in range(6)]
            warm_up.extend(order.order_id for order in batch)
            await publish_all(infrastructure, names, batch)
            await asyncio.sleep(1.0)
            return all(replica.handled_orders() > 0 for replica in replicas)

        await eventually(both_consuming, timeout=90, interval=0.5)
        handled_before = [replica.handled_orders() for replica in replicas]

        shuffle = random.Random(20261123)
        orders = [
            order_placed(
                unique("ord"),
                {sku: shuffle.randint(1, 3) for sku in shuffle.sample(skus, shuffle.randint(1, 2))},
                country=shuffle.choice(["FR", "DE", "PL", "JP"]),
            )
            for _ in range(ORDERS)
        ]
        await publish_all(infrastructure, names, orders)

        expected = {order.order_id for order in orders} | set(warm_up)
        answers: list[Event] = []

        async def all_answered() -> bool:
            nonlocal answers
            answers = await answers_by_order(infrastructure, names)
            return expected <= {event.subject() for event in answers}

        await eventually(all_answered, timeout=180, interval=1.0)
        for replica in replicas:
            assert replica.process.poll() is None, f"{replica.name} died:\n{replica.log_tail()}"
        handled_during = [
            replica.handled_orders() - before
            for replica, before in zip(replicas, handled_before, strict=True)
        ]

    order_ids = {order.order_id for order in orders}
    per_order = Counter(event.subject() for event in answers if event.subject() in order_ids)
    assert set(per_order) == order_ids
    assert [order for order, count in per_order.items() if count != 1] == []
    reserved_events = [
        e for e in answers if isinstance(e, StockReserved) and e.order_id in order_ids
    ]
    failed_events = [
        e for e in answers if isinstance(e, StockReservationFailed) and e.order_id in order_ids
    ]
    assert reserved_events and failed_events, "the stock must be contended for"
    assert all(count > 0 for count in handled_during), handled_during

    reserved_by_events: Counter[tuple[str, str]] = Counter()
    for event in reserved_events:
        for allocation in event.allocations:
            reserved_by_events[(allocation.sku, allocation.warehouse_id)] += allocation.quantity

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            stock = {
                (row.sku, row.warehouse_id): (row.on_hand, row.reserved)
                for row in await connection.execute(
                    text("SELECT sku, warehouse_id, on_hand, reserved FROM stock")
                )
            }
            held_by_lines = {
                (row.sku, row.warehouse_id): row.held
                for row in await connection.execute(
                    text(
                        "SELECT sku, warehouse_id, SUM(reserved - committed - released) AS held "
                        "FROM reservation_lines GROUP BY sku, warehouse_id"
                    )
                )
            }
            ledger = {
                (row.sku, row.warehouse_id): (row.on_hand, row.reserved)
                for row in await connection.execute(
                    text(
                        "SELECT sku, warehouse_id, SUM(on_hand_change) AS on_hand, "
                        "SUM(reserved_change) AS reserved FROM stock_movements "
                        "GROUP BY sku, warehouse_id"
                    )
                )
            }
    finally:
        await engine.dispose()

    assert set(stock) == {(sku, warehouse_id) for sku in skus for warehouse_id in WAREHOUSES}
    for key, (on_hand, reserved) in stock.items():
        assert on_hand == UNITS_PER_ROW, key
        assert 0 <= reserved <= on_hand, f"{key}: available {on_hand - reserved}"
        assert reserved == held_by_lines.get(key, 0), key
        assert reserved == reserved_by_events[key], key
    assert ledger == stock
