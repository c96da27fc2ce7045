"""Wires the inventory service: settings, runtime, consumers and HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    http_port: int = 8002
    database_url: str = database_url_field("inventory")


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    runtime = ServiceRuntime(
        settings, ServiceDefinition(name="inventory", migrations=MIGRATIONS, routes={})
    )
    return create_http_app(runtime)
