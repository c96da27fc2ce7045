"""Shopify webhooks through the receiver, the real broker and the order service
(in-process, real PostgreSQL): what gets placed, once."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.shopify.app import WEBHOOK_PATH, create_app
from adapters.shopify.settings import ShopifySettings
from tests.adapters.order_scene import OrderScene, running_order_service
from tests.adapters.shopify import CASES, NAMES, case, load
from tests.adapters.shopify_payloads import shopify_order, signed_headers
from tests.infrastructure import Infrastructure

pytestmark = pytest.mark.integration

SECRET = "shpss_integration_secret"


@dataclass
class Scene:
    orders: OrderScene
    shopify: httpx.AsyncClient

    async def deliver(
        self, payload: dict[str, Any], *, webhook_id: str, secret: str = SECRET
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = signed_headers(secret, body, webhook_id=webhook_id)
        return await self.shopify.post(WEBHOOK_PATH, content=body, headers=headers)


def new_shopify_order() -> dict[str, Any]:
    return shopify_order(id=random.randrange(10**12, 10**13))


@pytest.fixture(scope="module")
async def scene(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scene]:
    skus = ["LAMP-ARC", "MUG-STONE", *(sku for known in CASES for sku in known.skus)]
    async with running_order_service(infrastructure, skus) as orders:
        settings = ShopifySettings(
            webhook_secret=SECRET,
            kafka_bootstrap_servers=infrastructure.kafka_bootstrap_servers,
            topic_namespace=orders.names.namespace,
            deliveries_path=Path(tmp_path_factory.mktemp("shopify")) / "deliveries.sqlite3",
        )
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://shopify") as client,
        ):
            yield Scene(orders, client)


async def test_a_signed_webhook_places_the_order(scene: Scene) -> None:
    payload = new_shopify_order()
    external_id = str(payload["id"])

    answer = await scene.deliver(payload, webhook_id=str(uuid.uuid4()))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "accepted", "external_order_id": external_id}
    summary = await scene.orders.placed("shopify", external_id)
    assert summary["status"] == "placed"
    assert summary["customer_id"] == "7319088775219"
    assert summary["total"] == {"amount_minor": 7820, "currency": "EUR"}


async def test_the_same_webhook_again_is_a_duplicate_and_still_one_order(scene: Scene) -> None:
    payload = new_shopify_order()
    external_id = str(payload["id"])
    webhook_id = str(uuid.uuid4())

    first = await scene.deliver(payload, webhook_id=webhook_id)
    again = await scene.deliver(payload, webhook_id=webhook_id)

    assert first.json()["status"] == "accepted"
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    await scene.orders.placed("shopify", external_id)
    records = await scene.orders.inbound_records(f"shopify:{external_id}")
    assert len(records) == 1, "a duplicate webhook is not published again"


async def test_another_webhook_id_for_the_same_order_still_makes_one_order(
    scene: Scene,
) -> None:
    payload = new_shopify_order()
    external_id = str(payload["id"])

    first = await scene.deliver(payload, webhook_id=str(uuid.uuid4()))
    second = await scene.deliver(payload, webhook_id=str(uuid.uuid4()))

    assert [first.json()["status"], second.json()["status"]] == ["accepted", "accepted"]
    records = await scene.orders.inbound_records(f"shopify:{external_id}")
    assert len(records) == 2, "both deliveries were published"
    await scene.orders.wait_consumed(records)
    assert len(await scene.orders.orders("shopify", external_id)) == 1


async def test_a_bad_signature_is_401_and_nothing_is_published(scene: Scene) -> None:
    payload = new_shopify_order()
    external_id = str(payload["id"])

    answer = await scene.deliver(payload, webhook_id=str(uuid.uuid4()), secret="not ours")

    assert answer.status_code == 401
    assert await scene.orders.inbound_records(f"shopify:{external_id}") == []


async def test_a_payload_without_line_items_is_422_naming_the_field(scene: Scene) -> None:
    payload = new_shopify_order()
    del payload["line_items"]

    answer = await scene.deliver(payload, webhook_id=str(uuid.uuid4()))

    assert answer.status_code == 422
    assert answer.json()["problems"] == [{"field": "line_items", "problem": "missing"}]
    assert await scene.orders.inbound_records(f"shopify:{payload['id']}") == []


async def test_an_order_without_email_customer_or_address_is_placed(scene: Scene) -> None:
    payload = shopify_order(
        id=random.randrange(10**12, 10**13),
        email="",
        contact_email=None,
        customer=None,
        shipping_address=None,
        billing_address=None,
    )

    answer = await scene.deliver(payload, webhook_id=str(uuid.uuid4()))

    assert answer.status_code == 200, answer.text
    summary = await scene.orders.placed("shopify", str(payload["id"]))
    assert (summary["status"], summary["total"]["amount_minor"]) == ("placed", 7820)


@pytest.mark.parametrize("name", NAMES)
async def test_every_fixture_is_placed_with_shopifys_total(scene: Scene, name: str) -> None:
    payload = load(name) | {"id": random.randrange(10**12, 10**13)}

    answer = await scene.deliver(payload, webhook_id=str(uuid.uuid4()))

    assert answer.status_code == 200, answer.text
    summary = await scene.orders.placed("shopify", str(payload["id"]))
    expected = case(name)
    assert summary["status"] == "placed", summary
    assert summary["total"] == {"amount_minor": expected.total_minor, "currency": expected.currency}
