"""`python -m demo`: load the demo catalogue and push a stream of web-shop orders through
the running system, showing each order's status live until every one has finished."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from aiokafka import AIOKafkaProducer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from adapters.publisher import inbound_topic
from contracts.base import Money
from contracts.wire import encode
from demo.catalogue import PRODUCTS, WAREHOUSES
from demo.shop import CHANNEL, WebShop

FINISHED = {"delivered", "cancelled", "rejected", "returned", "partially_returned"}
STATUS_ORDER = (
    "placed",
    "confirmed",
    "partially_shipped",
    "shipped",
    "delivered",
    "return_requested",
    "partially_returned",
    "returned",
    "cancelled",
    "rejected",
)
console = Console()


class Demo:
    def __init__(self, urls: dict[str, str], bootstrap: str, run_id: str) -> None:
        self.urls = urls
        self.bootstrap = bootstrap
        self.run_id = run_id
        self.shop = WebShop(run_id)
        self.handled: set[str] = set()
        self.actions: list[str] = []

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls[service], timeout=10)

    async def seed(self) -> None:
        async with self.client("inventory") as inventory, self.client("order") as order:
            for warehouse in WAREHOUSES:
                (
                    await inventory.put(
                        f"/warehouses/{warehouse.warehouse_id}",
                        json={
                            "name": warehouse.name,
                            "country": warehouse.country,
                            "latitude": warehouse.latitude,
                            "longitude": warehouse.longitude,
                        },
                    )
                ).raise_for_status()
            for product in PRODUCTS:
                (
                    await order.put(
                        f"/products/{product.sku}", json={"name": product.name, "active": True}
                    )
                ).raise_for_status()
                for warehouse_id, units in product.stock.items():
                    (
                        await inventory.post(
                            "/stock/receipts",
                            json={
                                "sku": product.sku,
                                "warehouse_id": warehouse_id,
                                "quantity": units,
                                "reference": f"demo-{self.run_id}-{product.sku}-{warehouse_id}",
                            },
                        )
                    ).raise_for_status()

    async def statuses(self) -> dict[str, dict[str, Any]]:
        async with self.client("order") as order:
            answer = await order.get("/orders", params={"channel": CHANNEL, "limit": 500})
        prefix = f"demo-{self.run_id}-"
        return {
            s["external_order_id"]: s
            for s in answer.json()["items"]
            if s["external_order_id"].startswith(prefix)
        }

    async def act_as_customer_service(self, orders: dict[str, dict[str, Any]]) -> None:
        """Cancel about one order in eight while it waits in the warehouse, and return
        about one delivered order in five: the rest of the flow, driven by people."""
        for external_id, summary in orders.items():
            number = int(external_id.rsplit("-", 1)[1])
            if external_id in self.handled:
                continue
            if number % 8 == 3 and summary["status"] == "confirmed":
                self.handled.add(external_id)
                async with self.client("order") as order:
                    answer = await order.post(
                        f"/orders/{summary['order_id']}/cancel",
                        json={"reason": "customer_request", "cancelled_by": "demo-agent"},
                    )
                self.actions.append(
                    f"{external_id}: customer asked to cancel → {answer.status_code}"
                )
            elif number % 5 == 2 and summary["status"] == "delivered":
                self.handled.add(external_id)
                self.actions.append(f"{external_id}: {await self.return_one(summary['order_id'])}")

    async def return_one(self, order_id: str) -> str:
        async with self.client("order") as order:
            lines = (await order.get(f"/orders/{order_id}")).json()["lines"]
        first = lines[0]
        async with self.client("returns") as returns:
            requested = await returns.post(
                "/returns",
                json={
                    "order_id": order_id,
                    "lines": [
                        {
                            "sku": first["sku"],
                            "quantity": first["quantity"],
                            "reason_code": "damaged",
                        }
                    ],
                },
            )
            if requested.status_code != 201:
                return f"return refused ({requested.status_code})"
            return_id = requested.json()["return_id"]
            await returns.post(f"/returns/{return_id}/approve")
            received = await returns.post(
                f"/returns/{return_id}/receive",
                json={
                    "lines": [
                        {
                            "sku": first["sku"],
                            "quantity": first["quantity"],
                            "restockable_quantity": first["quantity"] - 1,
                        }
                    ]
                },
            )
        if received.status_code != 200:
            return f"receipt refused ({received.status_code})"
        refund = received.json()["refund"]
        amount = Money(amount_minor=refund["amount_minor"], currency=refund["currency"])
        tax = Money(amount_minor=refund["tax_amount_minor"], currency=refund["currency"])
        return f"returned {first['quantity']} x {first['sku']}, refund {amount} (VAT {tax})"

    def view(self, orders: dict[str, dict[str, Any]], submitted: int, total: int) -> Group:
        counts = Counter(summary["status"] for summary in orders.values())
        table = Table(title=f"Demo run {self.run_id}: {submitted}/{total} orders submitted")
        table.add_column("status")
        table.add_column("orders", justify="right")
        table.add_column("")
        for status in STATUS_ORDER:
            table.add_row(status, str(counts.get(status, 0)), "█" * counts.get(status, 0))
        recent = Table.grid()
        for line in self.actions[-6:]:
            recent.add_row(line)
        return Group(table, recent)


async def run(
    orders: int,
    rate: float,
    wait_seconds: float,
    urls: dict[str, str],
    bootstrap: str,
    namespace: str,
) -> int:
    demo = Demo(urls, bootstrap, run_id=uuid.uuid4().hex[:6])
    console.print("Loading warehouses, products and stock …")
    await demo.seed()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    deadline = time.monotonic() + wait_seconds
    snapshot: dict[str, dict[str, Any]] = {}
    try:
        with Live(demo.view({}, 0, orders), console=console, refresh_per_second=4) as live:
            for number in range(orders):
                submitted = demo.shop.order(number, submitted_at=datetime.now(UTC))
                record = encode(submitted, source="/demo/webshop")
                await producer.send_and_wait(
                    inbound_topic(namespace),
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
                snapshot = await demo.statuses()
                await demo.act_as_customer_service(snapshot)
                live.update(demo.view(snapshot, number + 1, orders))
                await asyncio.sleep(1 / rate)
            while time.monotonic() < deadline:
                snapshot = await demo.statuses()
                await demo.act_as_customer_service(snapshot)
                live.update(demo.view(snapshot, orders, orders))
                if len(snapshot) == orders and all(
                    summary["status"] in FINISHED for summary in snapshot.values()
                ):
                    break
                await asyncio.sleep(0.5)
    finally:
        await producer.stop()
    finished = sum(summary["status"] in FINISHED for summary in snapshot.values())
    console.print()
    console.print(
        f"{finished} of {orders} orders finished their flow. "
        "Emails sent to customers: .local/logs/mail.log"
    )
    console.print(f"Sold: {demo.shop.takings()}")
    console.print("Operations dashboard: http://127.0.0.1:8006")
    return 0 if finished == orders else 1


def main(
    orders: Annotated[int, typer.Option(help="How many orders to submit")] = 30,
    rate: Annotated[float, typer.Option(help="Orders submitted per second")] = 3.0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every order")] = 120,
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS")] = "127.0.0.1:9092",
    namespace: Annotated[
        str, typer.Option(envvar="OMS_TOPIC_NAMESPACE", help="Topic namespace of the services")
    ] = "",
    order_url: str = "http://127.0.0.1:8001",
    inventory_url: str = "http://127.0.0.1:8002",
    returns_url: str = "http://127.0.0.1:8004",
) -> None:
    urls = {"order": order_url, "inventory": inventory_url, "returns": returns_url}
    raise typer.Exit(asyncio.run(run(orders, rate, timeout, urls, bootstrap, namespace)))


if __name__ == "__main__":
    typer.run(main)
