"""Wires the returns service: settings, runtime, consumers and HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class ReturnsSettings(ServiceSettings):
    service_name: str = "returns"
    http_port: int = 8004
    database_url: str = database_url_field("returns")


def create_app(settings: ReturnsSettings | None = None) -> FastAPI:
    settings = settings or ReturnsSettings()
    runtime = ServiceRuntime(
        settings, ServiceDefinition(name="returns", migrations=MIGRATIONS, routes={})
    )
    return create_http_app(runtime)
