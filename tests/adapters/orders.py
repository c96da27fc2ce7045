"""Valid channel orders for the adapter tests, as a contract model or as a JSON dict."""

from __future__ import annotations

import json
import uuid
from typing import Any

from contracts.events.channel import OrderSubmitted


def order_document(
    *, channel: str = "webshop", external_order_id: str | None = None, sku: str = "SKU-A"
) -> dict[str, Any]:
    """An order as a channel would write its JSON: 2 x 25.00 EUR plus 5.90 shipping."""

    def eur(amount_minor: int) -> dict[str, Any]:
        return {"amount_minor": amount_minor, "currency": "EUR"}

    return {
        "channel": channel,
        "external_order_id": external_order_id or f"ext-{uuid.uuid4().hex[:8]}",
        "customer": {
            "customer_id": "cus-1",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "locale": "en",
        },
        "lines": [
            {
                "line_id": "1",
                "sku": sku,
                "quantity": 2,
                "unit_price": eur(2500),
                "line_total": eur(5000),
            }
        ],
        "currency": "EUR",
        "subtotal": eur(5000),
        "shipping_charge": eur(590),
        "total": eur(5590),
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 rue de la Paix",
            "city": "Paris",
            "postal_code": "75002",
            "country": "FR",
        },
        "shipping_speed": "standard",
        "submitted_at": "2024-05-14T13:32:08Z",
    }


def submitted_order(**options: Any) -> OrderSubmitted:
    return OrderSubmitted.model_validate_json(json.dumps(order_document(**options)))
