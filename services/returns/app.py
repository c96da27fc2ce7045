"""Wires the returns service: settings, runtime, consumers and HTTP routes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field, return_window_field
from services.returns import handlers
from services.returns.api import build_router
from services.returns.service import ReturnPolicy

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class ReturnsSettings(ServiceSettings):
    service_name: str = "returns"
    http_port: int = 8004
    database_url: str = database_url_field("returns")
    return_window_days: int = return_window_field()
    returns_auto_approve: bool = Field(
        default=False,
        description="Approve every request that passes the return check at once "
        "(OMS_RETURNS_AUTO_APPROVE)",
    )


def create_app(settings: ReturnsSettings | None = None) -> FastAPI:
    settings = settings or ReturnsSettings()
    runtime = ServiceRuntime(
        settings,
        ServiceDefinition(name="returns", migrations=MIGRATIONS, router=handlers.router()),
    )
    policy = ReturnPolicy(
        window=timedelta(days=settings.return_window_days),
        auto_approve=settings.returns_auto_approve,
    )
    return create_http_app(runtime, [build_router(runtime, policy)])
