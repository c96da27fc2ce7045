"""Real channel orders end to end: Shopify `orders/create` bodies with discounts, taxes,
shipping lines, tips, SKU-less lines, a point-of-sale sale and a Hong Kong address go
through the Shopify receiver and the five services (each its own process) on the real
Kafka and PostgreSQL; each is placed with Shopify's own total, and one is shipped, partly
returned and refunded exactly the paid share of what came back."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.shopify.app import WEBHOOK_PATH, create_app
from adapters.shopify.settings import ShopifySettings
from tests.adapters.shopify import CASES, case, load
from tests.adapters.shopify_payloads import signed_headers
from tests.e2e.flow import Flow, seed_catalogue
from tests.e2e.system import running_system
from tests.infrastructure import REPO, Infrastructure
from tests.kafka_tools import eventually

pytestmark = pytest.mark.e2e

SECRET = "shpss_e2e_secret"
FULFILMENT = "oms.fulfilment.v1"


@dataclass
class Shop:
    flow: Flow
    receiver: httpx.AsyncClient

    async def send(self, name: str) -> str:
        """Delivers the fixture as a new Shopify order; returns the order id it became."""
        payload = load(name)
        payload["id"] = uuid.uuid4().int % 10**15
        body = json.dumps(payload).encode()
        answer = await self.receiver.post(
            WEBHOOK_PATH,
            content=body,
            headers=signed_headers(SECRET, body, webhook_id=str(uuid.uuid4())),
        )
        assert answer.status_code == 200, answer.text
        return await self._order_id("shopify", str(payload["id"]))

    async def _order_id(self, channel: str, external_order_id: str) -> str:
        found: list[str] = []

        async def known() -> bool:
            async with self.flow.system.client("order") as client:
                answer = await client.get(
                    "/orders", params={"channel": channel, "external_order_id": external_order_id}
                )
            found[:] = [item["order_id"] for item in answer.json()["items"]]
            return bool(found)

        await eventually(known, timeout=30)
        return found[0]


@pytest.fixture(scope="module")
async def shop(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Shop]:
    async with running_system(infrastructure, REPO / "reports" / "e2e-logs" / "shopify") as system:
        flow = Flow(system, infrastructure)
        await seed_catalogue(
            system, {sku: {"wh-paris": 50} for known in CASES for sku in known.skus}
        )
        settings = ShopifySettings(
            webhook_secret=SECRET,
            kafka_bootstrap_servers=infrastructure.kafka_bootstrap_servers,
            topic_namespace=system.names.namespace,
            deliveries_path=Path(tmp_path_factory.mktemp("shopify")) / "deliveries.sqlite3",
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://shopify"
            ) as receiver,
        ):
            yield Shop(flow, receiver)


async def test_every_shopify_order_is_placed_with_shopifys_own_total(shop: Shop) -> None:
    placed = {known.name: await shop.send(known.name) for known in CASES}

    for known in CASES:
        order = await shop.flow.wait_status(placed[known.name], "confirmed")
        assert order["total"] == {"amount_minor": known.total_minor, "currency": known.currency}, (
            known.name
        )


async def test_a_discounted_taxed_order_ships_and_refunds_the_paid_share_of_a_returned_unit(
    shop: Shop,
) -> None:
    name = "fixed_code_and_automatic_discount"
    payload = load(name)
    flow = shop.flow
    order_id = await shop.send(name)
    await flow.wait_status(order_id, "confirmed")
    for shipment in await flow.shipments(order_id, 1):
        shipped = await flow.ship(shipment["shipment_id"])
        await flow.deliver(shipped["tracking_number"])
    await flow.wait_status(order_id, "delivered")
    await flow.wait_consumed("returns", FULFILMENT)
    item = next(line for line in payload["line_items"] if line["quantity"] > 1)

    async with flow.system.client("returns") as returns:
        requested = await returns.post(
            "/returns",
            json={
                "order_id": order_id,
                "lines": [{"sku": item["sku"], "quantity": 1, "reason_code": "no_longer_needed"}],
            },
        )
        assert requested.status_code == 201, requested.text
        return_id = requested.json()["return_id"]
        assert (await returns.post(f"/returns/{return_id}/approve")).status_code == 200
        received = await returns.post(
            f"/returns/{return_id}/receive",
            json={"lines": [{"sku": item["sku"], "quantity": 1, "restockable_quantity": 1}]},
        )
        assert received.status_code == 200, received.text

    refunds: list[dict[str, Any]] = []

    async def refunded() -> bool:
        refunds[:] = (await flow.order(order_id))["refunds"]
        return bool(refunds)

    await eventually(refunded, timeout=30)
    goods, tax = paid_share_of_one_unit(item, taxes_included=payload["taxes_included"])
    [refund] = refunds
    assert refund["amount"] == {"amount_minor": goods + tax, "currency": case(name).currency}
    assert refund["goods_amount"]["amount_minor"] == goods
    assert refund["tax_amount"]["amount_minor"] == tax
    assert refund["shipping_amount"]["amount_minor"] == 0
    unit_price = cents(item["price"])
    assert goods + tax != unit_price, "a discounted, taxed unit refunds what was paid for it"


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def paid_share_of_one_unit(item: dict[str, Any], *, taxes_included: bool) -> tuple[int, int]:
    """The first returned unit of a Shopify line: its share of what the line paid after
    its discounts (goods, net of tax) and of its tax, each rounded down, computed here from
    Shopify's own fields."""
    quantity = item["quantity"]
    after_discounts = cents(item["price"]) * quantity - sum(
        cents(allocation["amount"]) for allocation in item["discount_allocations"]
    )
    tax = sum(cents(line["price"]) for line in item["tax_lines"])
    goods = after_discounts - tax if taxes_included else after_discounts
    return goods // quantity, tax // quantity
