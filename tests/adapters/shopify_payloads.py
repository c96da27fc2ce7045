"""A realistic Shopify `orders/create` payload (written by hand after Shopify's documented
order resource) and helpers to vary and sign it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from adapters.shopify.app import signature

FIXTURE = Path(__file__).parent / "shopify_orders_create.json"


def shopify_order(**changes: Any) -> dict[str, Any]:
    """The fixture order with top-level fields replaced (None removes a field)."""
    order: dict[str, Any] = json.loads(FIXTURE.read_text())
    for name, value in changes.items():
        if value is None:
            order.pop(name, None)
        else:
            order[name] = copy.deepcopy(value)
    return order


def signed_headers(
    secret: str, body: bytes, *, webhook_id: str, topic: str = "orders/create"
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature(secret, body),
        "X-Shopify-Shop-Domain": "atelier-lumiere.myshopify.com",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-API-Version": "2024-04",
        "X-Shopify-Triggered-At": "2024-05-14T13:32:09.123456Z",
    }
