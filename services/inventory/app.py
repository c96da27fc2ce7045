"""Wires the inventory service: settings, runtime, consumers and HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.inventory.api import create_router
from services.inventory.handlers import router
from services.inventory.service import StockPolicy
from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    http_port: int = 8002
    database_url: str = database_url_field("inventory")
    default_low_stock_threshold: int = Field(
        default=5,
        ge=0,
        description="Low-stock threshold of a SKU that has none of its own "
        "(OMS_DEFAULT_LOW_STOCK_THRESHOLD)",
    )


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    policy = StockPolicy(default_low_stock_threshold=settings.default_low_stock_threshold)
    runtime = ServiceRuntime(
        settings,
        ServiceDefinition(name="inventory", migrations=MIGRATIONS, router=router(policy)),
    )
    return create_http_app(runtime, [create_router(runtime, policy)])
