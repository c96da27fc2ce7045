"""Wires the order service: settings, runtime, consumers and HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class OrderSettings(ServiceSettings):
    service_name: str = "order"
    http_port: int = 8001
    database_url: str = database_url_field("order")


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or OrderSettings()
    runtime = ServiceRuntime(
        settings, ServiceDefinition(name="order", migrations=MIGRATIONS, routes={})
    )
    return create_http_app(runtime)
