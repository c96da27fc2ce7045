"""The HTTP endpoint Shopify delivers `orders/create` webhooks to.

`POST /webhooks/shopify/orders-create` answers with a JSON body whose `status` is:

- 200 `accepted`: published, and the broker acknowledged it;
- 200 `duplicate`: this `X-Shopify-Webhook-Id` was published before;
- 401 `unauthorized`: `X-Shopify-Hmac-Sha256` missing or wrong;
- 413 `too_large`: a body over `max_body_bytes`;
- 422 `invalid`: not JSON, not an order we can map, or an order that breaks the contract;
  `stage` says which and `problems` lists each field and what is wrong with it;
- 503 `unavailable`: the broker did not acknowledge in time; Shopify retries.

Why 422 for a payload we cannot map, when Shopify retries every non-2xx: a 2xx would
tell Shopify the order was taken while it was dropped. A 422 keeps the failure visible in
the store's webhook delivery log and in ours (each is logged with its problems), and
Shopify's retries (for up to 48 hours) deliver the order again once the cause is fixed:
a SKU filled in on the product, or this mapping corrected. (Shopify removes a
subscription that keeps failing, which is also a signal worth having.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.publisher import ChannelPublisher, FieldProblem, InvalidOrder, PublishFailed
from adapters.shopify.deliveries import DeliveryLog
from adapters.shopify.mapping import UnmappablePayload, map_order
from adapters.shopify.settings import ShopifySettings
from adapters.shopify.sku import SkuFallback

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/shopify/orders-create"
ORDERS_CREATE = "orders/create"
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_HEADER = "X-Shopify-Shop-Domain"


def signature(secret: str, body: bytes) -> str:
    """Shopify's signature of a webhook body: base64 of its HMAC-SHA256 under the secret."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_matches(secret: str, body: bytes, claimed: str | None) -> bool:
    """Constant-time comparison over the raw bytes Shopify signed (not re-serialised JSON:
    any re-encoding would change them)."""
    if not claimed:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), claimed.strip().encode())


@dataclass
class Receiver:
    settings: ShopifySettings
    publisher: ChannelPublisher
    deliveries: DeliveryLog
    sku_fallback: SkuFallback


def create_app(settings: ShopifySettings | None = None) -> FastAPI:
    settings = settings or ShopifySettings()
    receiver = Receiver(
        settings=settings,
        publisher=ChannelPublisher(
            settings.kafka_bootstrap_servers,
            source=f"/{settings.channel}",
            namespace=settings.topic_namespace,
            timeout_seconds=settings.publish_timeout_seconds,
            client_id=f"oms-{settings.channel}-receiver",
        ),
        deliveries=DeliveryLog(settings.deliveries_path),
        sku_fallback=SkuFallback(settings.sku_fallback),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The producer connects on the first webhook, not here: the receiver starts (and
        # answers 503, so Shopify retries) even while the broker is down.
        await receiver.deliveries.open()
        try:
            yield
        finally:
            await receiver.publisher.stop()

    app = FastAPI(
        title="OMS Shopify receiver",
        description="Receives Shopify orders/create webhooks and publishes OrderSubmitted.",
        lifespan=lifespan,
    )
    app.state.receiver = receiver

    @app.get("/health", tags=["operations"], summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(WEBHOOK_PATH, tags=["webhooks"], summary="Shopify orders/create webhook")
    async def orders_create(request: Request) -> JSONResponse:
        return await _handle(receiver, request)

    return app


async def _handle(receiver: Receiver, request: Request) -> JSONResponse:
    settings = receiver.settings
    body = await _body(request, settings.max_body_bytes)
    if body is None:
        return _answer(413, "too_large", detail=f"body over {settings.max_body_bytes} bytes")
    secret = settings.webhook_secret.get_secret_value()
    if not signature_matches(secret, body, request.headers.get(HMAC_HEADER)):
        log.warning("shopify webhook refused: bad or missing %s", HMAC_HEADER)
        return _answer(401, "unauthorized", detail=f"{HMAC_HEADER} missing or wrong")
    topic = request.headers.get(TOPIC_HEADER)
    if topic is not None and topic != ORDERS_CREATE:
        problem = FieldProblem(TOPIC_HEADER, f"{topic!r}: this endpoint takes {ORDERS_CREATE}")
        return _invalid(request, "headers", [problem])
    webhook_id = request.headers.get(WEBHOOK_ID_HEADER)
    if webhook_id and await receiver.deliveries.seen(webhook_id):
        return _answer(200, "duplicate", webhook_id=webhook_id)
    try:
        # Decimals, not floats: should an amount come as a JSON number, keep it exact.
        payload = json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as error:
        return _invalid(request, "json", [FieldProblem("payload", f"not JSON: {error}")])
    try:
        order = map_order(
            payload,
            channel=settings.channel,
            money=settings.money,
            sku_fallback=receiver.sku_fallback,
        )
    except UnmappablePayload as unmappable:
        return _invalid(request, "mapping", unmappable.problems)
    except InvalidOrder as invalid:
        return _invalid(request, "contract", invalid.problems)
    try:
        receipt = await receiver.publisher.publish(order)
    except PublishFailed as failure:
        log.error("shopify order %s not published: %s", order.external_order_id, failure)
        response = _answer(503, "unavailable", detail="the order could not be queued; retry")
        response.headers["Retry-After"] = "10"
        return response
    if webhook_id:
        try:
            await receiver.deliveries.record(webhook_id, order.external_order_id)
        except (sqlite3.Error, OSError) as error:
            # The order is safely published: a retry of this webhook publishes it again,
            # and the order service places it once. Not worth failing the delivery for.
            log.error("webhook %s published but not recorded: %s", webhook_id, error)
    log.info(
        "shopify order %s published as %s (webhook %s, partition %s offset %s)",
        order.external_order_id,
        receipt.event_id,
        webhook_id,
        receipt.partition,
        receipt.offset,
    )
    return _answer(200, "accepted", external_order_id=order.external_order_id)


async def _body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None past `limit` bytes (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(request: Request, stage: str, problems: Iterable[FieldProblem]) -> JSONResponse:
    listed = [{"field": problem.field, "problem": problem.problem} for problem in problems]
    log.warning(
        "shopify webhook %s from %s refused at %s: %s",
        request.headers.get(WEBHOOK_ID_HEADER),
        request.headers.get(SHOP_HEADER),
        stage,
        "; ".join(f"{item['field']}: {item['problem']}" for item in listed),
    )
    return _answer(422, "invalid", stage=stage, problems=listed)


def _answer(status_code: int, status: str, **fields: Any) -> JSONResponse:
    return JSONResponse({"status": status, **fields}, status_code=status_code)
