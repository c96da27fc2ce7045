"""Wires the fulfilment service: settings, runtime, consumers, HTTP routes and the
automatic mode."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from contracts.base import CurrencyCode
from services.fulfilment import handlers
from services.fulfilment.api import create_router
from services.fulfilment.automation import automatic_steps
from services.fulfilment.domain import AutomaticDelays, ShippingPolicy
from services.fulfilment.service import FulfilmentRules
from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class FulfilmentSettings(ServiceSettings):
    """Environment: `OMS_<FIELD NAME>` (e.g. `OMS_FULFILMENT_AUTO=true`), database
    `FULFILMENT_DATABASE_URL`. A warehouse's country is no setting: the reservations name
    it, from the inventory service's warehouse records."""

    service_name: str = "fulfilment"
    http_port: int = 8003
    database_url: str = database_url_field("fulfilment")

    fulfilment_currency: CurrencyCode = Field(
        default="EUR",
        description="Currency of the rate table's amounts and of every shipping cost",
    )
    fulfilment_unit_weight_grams: int = Field(
        default=500, gt=0, le=1_000_000, description="Weight of one unit of any SKU"
    )

    fulfilment_auto: bool = Field(
        default=False, description="Play warehouse and carrier: step shipments by themselves"
    )
    fulfilment_auto_pack_seconds: float = Field(default=1.0, ge=0)
    fulfilment_auto_ship_seconds: float = Field(default=1.0, ge=0)
    fulfilment_auto_deliver_seconds: float = Field(default=2.0, ge=0)
    fulfilment_auto_workers: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Rounds of steps one replica runs at once, on a database connection each",
    )
    fulfilment_auto_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most shipments one round steps"
    )
    fulfilment_auto_idle_seconds: float = Field(
        default=0.2, gt=0, description="Pause when no shipment is due"
    )
    fulfilment_auto_retry_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Pause after a failed round (database unavailable, or a shipment whose "
        "step failed: it is tried again then)",
    )


def create_app(settings: FulfilmentSettings | None = None) -> FastAPI:
    settings = settings or FulfilmentSettings()
    rules = FulfilmentRules(
        shipping=ShippingPolicy(
            currency=settings.fulfilment_currency,
            unit_weight_grams=settings.fulfilment_unit_weight_grams,
        ),
        delays=AutomaticDelays(
            pack_seconds=settings.fulfilment_auto_pack_seconds,
            ship_seconds=settings.fulfilment_auto_ship_seconds,
            deliver_seconds=settings.fulfilment_auto_deliver_seconds,
        ),
    )
    background = (
        [
            automatic_steps(
                rules,
                workers=settings.fulfilment_auto_workers,
                batch_size=settings.fulfilment_auto_batch_size,
                idle_seconds=settings.fulfilment_auto_idle_seconds,
                retry_seconds=settings.fulfilment_auto_retry_seconds,
            )
        ]
        if settings.fulfilment_auto
        else []
    )
    runtime = ServiceRuntime(
        settings,
        ServiceDefinition(
            name="fulfilment",
            migrations=MIGRATIONS,
            router=handlers.router(rules),
            background=background,
        ),
    )
    return create_http_app(runtime, [create_router(runtime, rules)])
