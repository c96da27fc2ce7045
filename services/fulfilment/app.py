"""Wires the fulfilment service: settings, runtime, consumers and HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class FulfilmentSettings(ServiceSettings):
    service_name: str = "fulfilment"
    http_port: int = 8003
    database_url: str = database_url_field("fulfilment")


def create_app(settings: FulfilmentSettings | None = None) -> FastAPI:
    settings = settings or FulfilmentSettings()
    runtime = ServiceRuntime(
        settings, ServiceDefinition(name="fulfilment", migrations=MIGRATIONS, routes={})
    )
    return create_http_app(runtime)
