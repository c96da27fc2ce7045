"""Wires the notification service: settings, runtime, consumers and HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class NotificationSettings(ServiceSettings):
    service_name: str = "notification"
    http_port: int = 8005
    database_url: str = database_url_field("notification")


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    runtime = ServiceRuntime(
        settings, ServiceDefinition(name="notification", migrations=MIGRATIONS, routes={})
    )
    return create_http_app(runtime)
