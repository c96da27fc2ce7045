"""The Shopify receiver's answers, with a stand-in producer (or none reachable): the
signature, the webhook-id de-duplication, field problems, and an unavailable broker.
Against the real broker and order service: test_shopify_integration.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.shopify.app import WEBHOOK_PATH, create_app, signature, signature_matches
from adapters.shopify.reader import MoneyLeg
from adapters.shopify.settings import ShopifySettings
from contracts.wire import header_map
from tests.adapters.shopify import body as fixture_body
from tests.adapters.shopify_payloads import shopify_order, signed_headers
from tests.adapters.stand_in import StandInProducer, publisher_with

SECRET = "shpss_test_secret"


@dataclass
class Receiver:
    app: FastAPI
    client: httpx.AsyncClient
    producer: StandInProducer

    async def deliver(
        self, body: bytes, *, webhook_id: str | None = None, **header_changes: str
    ) -> httpx.Response:
        headers = signed_headers(SECRET, body, webhook_id=webhook_id or str(uuid.uuid4()))
        headers.update(header_changes)
        return await self.client.post(WEBHOOK_PATH, content=body, headers=headers)


def settings(tmp_path: Path, **changes: object) -> ShopifySettings:
    values: dict[str, object] = {
        "webhook_secret": SECRET,
        "kafka_bootstrap_servers": "127.0.0.1:1",  # nothing listens: no broker here
        "deliveries_path": tmp_path / "deliveries.sqlite3",
        "publish_timeout_seconds": 3.0,
    }
    return ShopifySettings(**(values | changes))  # type: ignore[arg-type]


@asynccontextmanager
async def running(receiver_settings: ShopifySettings) -> AsyncIterator[Receiver]:
    app = create_app(receiver_settings)
    producer = StandInProducer()
    app.state.receiver.publisher = publisher_with(producer, source="/shopify")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        yield Receiver(app, client, producer)


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    async with running(settings(tmp_path)) as started:
        yield started


def published(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(value or b"") for _topic, _key, value, _headers in receiver.producer.sent]


def body_of(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    # Reference value computed independently:
    # printf '{"id":1}' | openssl dgst -sha256 -hmac secret -binary | base64
    assert signature("secret", b'{"id":1}') == "A971iWIMgT8Zj9A9eWfikrFj7wQ16/Qwcc4OlRl2PLc="
    assert signature_matches("secret", b'{"id":1}', signature("secret", b'{"id":1}'))
    assert not signature_matches("secret", b'{"id": 1}', signature("secret", b'{"id":1}'))
    assert not signature_matches("other", b'{"id":1}', signature("secret", b'{"id":1}'))
    assert not signature_matches("secret", b'{"id":1}', None)
    assert not signature_matches("secret", b'{"id":1}', "é not base64")


async def test_an_order_without_any_email_is_accepted(receiver: Receiver) -> None:
    payload = shopify_order(email="", contact_email=None, customer=None)

    answer = await receiver.deliver(body_of(payload))

    assert (answer.status_code, answer.json()["status"]) == (200, "accepted")
    [order] = published(receiver)
    assert order["customer"]["email"] is None


async def test_ids_past_2_to_the_53_arrive_exact(receiver: Receiver) -> None:
    answer = await receiver.deliver(fixture_body("pos_without_email_or_address"))

    assert answer.json() == {"status": "accepted", "external_order_id": "7344915628103945217"}
    [order] = published(receiver)
    assert [line["line_id"] for line in order["lines"]] == ["9007199254740993", "9007199254741217"]


async def test_the_money_leg_and_sku_fallback_come_from_the_settings(tmp_path: Path) -> None:
    chosen = settings(tmp_path, money="presentment", sku_fallback="v-{variant_id}")
    async with running(chosen) as receiver:
        await receiver.deliver(fixture_body("presentment_currency"))
        await receiver.deliver(fixture_body("line_without_sku"))

        presentment, without_sku = published(receiver)

    assert (presentment["currency"], presentment["total"]["amount_minor"]) == ("CAD", 11114)
    assert without_sku["lines"][0]["sku"] == "v-48230193847561"


async def test_a_signed_order_is_published_and_accepted(receiver: Receiver) -> None:
    answer = await receiver.deliver(body_of(shopify_order()))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "accepted", "external_order_id": "5837265018931"}
    [(topic, key, _value, headers)] = receiver.producer.sent
    assert (topic, key) == ("oms.channel.orders.v1", b"shopify:5837265018931")
    assert header_map(headers)["ce_source"] == "/shopify"


@pytest.mark.parametrize(
    "hmac_header",
    [None, "", signature("wrong secret", b"{}"), "garbage"],
    ids=["missing", "empty", "other-secret", "garbage"],
)
async def test_a_bad_signature_is_refused_and_nothing_published(
    receiver: Receiver, hmac_header: str | None
) -> None:
    body = body_of(shopify_order())
    headers = signed_headers(SECRET, body, webhook_id="w-1")
    del headers["X-Shopify-Hmac-Sha256"]
    if hmac_header is not None:
        headers["X-Shopify-Hmac-Sha256"] = hmac_header

    answer = await receiver.client.post(WEBHOOK_PATH, content=body, headers=headers)

    assert answer.status_code == 401
    assert answer.json()["status"] == "unauthorized"
    assert receiver.producer.sent == []


async def test_a_body_changed_after_signing_is_refused(receiver: Receiver) -> None:
    body = body_of(shopify_order())
    headers = signed_headers(SECRET, body, webhook_id="w-1")

    answer = await receiver.client.post(
        WEBHOOK_PATH, content=body.replace(b"29.90", b"0.01"), headers=headers
    )

    assert answer.status_code == 401
    assert receiver.producer.sent == []


async def test_the_same_webhook_id_is_published_once(receiver: Receiver) -> None:
    body = body_of(shopify_order())

    first = await receiver.deliver(body, webhook_id="w-same")
    again = await receiver.deliver(body, webhook_id="w-same")

    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "webhook_id": "w-same"}
    assert len(receiver.producer.sent) == 1


async def test_webhook_ids_survive_a_restart(tmp_path: Path) -> None:
    body = body_of(shopify_order())
    sent = []
    for _run in range(2):
        app = create_app(settings(tmp_path))
        producer = StandInProducer()
        app.state.receiver.publisher = publisher_with(producer, source="/shopify")
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://r") as client,
        ):
            headers = signed_headers(SECRET, body, webhook_id="w-durable")
            answer = await client.post(WEBHOOK_PATH, content=body, headers=headers)
            sent.append((answer.json()["status"], len(producer.sent)))

    assert sent == [("accepted", 1), ("duplicate", 0)]


async def test_missing_line_items_are_422_naming_the_field(receiver: Receiver) -> None:
    answer = await receiver.deliver(body_of(shopify_order(line_items=None)))

    assert answer.status_code == 422
    assert answer.json() == {
        "status": "invalid",
        "stage": "mapping",
        "problems": [{"field": "line_items", "problem": "missing"}],
    }
    assert receiver.producer.sent == []


async def test_a_custom_line_without_variant_is_422_naming_the_line(receiver: Receiver) -> None:
    line = {**shopify_order()["line_items"][0], "sku": "", "variant_id": None}

    answer = await receiver.deliver(body_of(shopify_order(line_items=[line])))

    assert answer.status_code == 422
    assert [problem["field"] for problem in answer.json()["problems"]] == ["line_items.0.sku"]
    assert receiver.producer.sent == []


async def test_an_order_breaking_the_contract_is_422_with_contract_fields(
    receiver: Receiver,
) -> None:
    answer = await receiver.deliver(body_of(shopify_order(email="nobody", contact_email=None)))

    assert answer.status_code == 422
    assert answer.json()["stage"] == "contract"
    assert [problem["field"] for problem in answer.json()["problems"]] == ["customer.email"]
    assert receiver.producer.sent == []


async def test_a_refused_delivery_is_not_remembered_so_its_retry_goes_through(
    receiver: Receiver,
) -> None:
    broken = await receiver.deliver(body_of(shopify_order(currency=None)), webhook_id="w-r")
    fixed = await receiver.deliver(body_of(shopify_order()), webhook_id="w-r")

    assert (broken.status_code, fixed.status_code) == (422, 200)
    assert fixed.json()["status"] == "accepted"


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""], ids=["syntax", "bytes", "empty"])
async def test_a_body_that_is_not_json_is_422(receiver: Receiver, body: bytes) -> None:
    answer = await receiver.deliver(body)

    assert answer.status_code == 422
    assert answer.json()["stage"] == "json"
    assert answer.json()["problems"][0]["field"] == "payload"


async def test_another_webhook_topic_is_refused(receiver: Receiver) -> None:
    body = body_of(shopify_order())
    answer = await receiver.deliver(body, **{"X-Shopify-Topic": "orders/cancelled"})

    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "X-Shopify-Topic"
    assert receiver.producer.sent == []


async def test_an_oversized_body_is_413(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, max_body_bytes=1000))
    body = body_of(shopify_order())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as client:
        answer = await client.post(
            WEBHOOK_PATH, content=body, headers=signed_headers(SECRET, body, webhook_id="w")
        )

    assert answer.status_code == 413


async def test_an_unreachable_broker_is_503_and_the_webhook_not_remembered(
    tmp_path: Path,
) -> None:
    app = create_app(settings(tmp_path))  # the real producer, pointed at a closed port
    body = body_of(shopify_order())
    headers = signed_headers(SECRET, body, webhook_id="w-503")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        answer = await client.post(WEBHOOK_PATH, content=body, headers=headers)
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable"
        assert answer.headers["Retry-After"] == "10"
        assert not await app.state.receiver.deliveries.seen("w-503")


def test_settings_need_the_webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_SHOPIFY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValueError, match="webhook_secret"):
        ShopifySettings()
    monkeypatch.setenv("OMS_SHOPIFY_WEBHOOK_SECRET", "from-env")
    monkeypatch.setenv("OMS_TOPIC_NAMESPACE", "staging")
    from_env = ShopifySettings()
    assert from_env.webhook_secret.get_secret_value() == "from-env"
    assert (from_env.topic_namespace, from_env.http_port, from_env.channel) == (
        "staging",
        8010,
        "shopify",
    )
    assert (from_env.money, from_env.sku_fallback) == (
        MoneyLeg.SHOP,
        "shopify-variant:{variant_id}",
    )


def test_settings_read_the_money_leg_and_check_the_sku_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMS_SHOPIFY_WEBHOOK_SECRET", "from-env")
    monkeypatch.setenv("OMS_SHOPIFY_MONEY", "presentment")
    monkeypatch.setenv("OMS_SHOPIFY_SKU_FALLBACK", "shopify:{product_id}-{variant_id}")
    assert (ShopifySettings().money, ShopifySettings().sku_fallback) == (
        MoneyLeg.PRESENTMENT,
        "shopify:{product_id}-{variant_id}",
    )
    monkeypatch.setenv("OMS_SHOPIFY_SKU_FALLBACK", "shopify:{handle}")
    with pytest.raises(ValueError, match="sku_fallback"):
        ShopifySettings()
    monkeypatch.setenv("OMS_SHOPIFY_SKU_FALLBACK", "shopify:{variant_id}")
    monkeypatch.setenv("OMS_SHOPIFY_MONEY", "euros")
    with pytest.raises(ValueError, match="money"):
        ShopifySettings()
