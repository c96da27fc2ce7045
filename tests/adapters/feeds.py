"""Rows of a marketplace feed for the importer tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "adapters" / "examples" / "marketplace-feed.csv"
NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def row(**changes: str) -> dict[str, str]:
    values = {
        "external_order_id": "MP-1",
        "customer_id": "cus-1",
        "customer_email": "ada@example.com",
        "customer_name": "Ada Lovelace",
        "locale": "en",
        "currency": "EUR",
        "sku": "SKU-A",
        "quantity": "2",
        "unit_price": "19.99",
        "shipping_charge": "4.90",
        "ship_name": "Ada Lovelace",
        "ship_line1": "12 rue de la Paix",
        "ship_line2": "",
        "ship_city": "Paris",
        "ship_postal_code": "75002",
        "ship_country": "FR",
        "shipping_speed": "standard",
    }
    return values | changes
