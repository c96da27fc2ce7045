"""Wires the order service: settings, runtime, consumers, background job and HTTP routes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI
from pydantic import Field

from contracts.events.channel import OrderSubmitted
from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field, return_window_field
from services.kit.topics import TopicNames
from services.order import api, handlers, jobs
from services.order.submissions import IntakePolicy

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class OrderSettings(ServiceSettings):
    service_name: str = "order"
    http_port: int = 8001
    database_url: str = database_url_field("order")
    deliverable_countries: frozenset[CountryCode] = Field(
        default=frozenset(),
        description="ISO country codes orders may ship to (JSON list); empty: every country",
    )
    return_window_days: int = return_window_field()
    completion_interval_seconds: float = Field(
        default=60, gt=0, description="How often to look for orders to complete"
    )
    completion_batch_size: int = Field(default=100, gt=0)


def create_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or OrderSettings()
    policy = IntakePolicy(deliverable_countries=settings.deliverable_countries)
    definition = ServiceDefinition(
        name="order",
        migrations=MIGRATIONS,
        router=handlers.router(policy),
        invalid_record_handler=handlers.invalid_submission_handler(
            TopicNames(settings.topic_namespace).of_event(OrderSubmitted)
        ),
        background=(
            jobs.order_completion(
                return_window=timedelta(days=settings.return_window_days),
                interval_seconds=settings.completion_interval_seconds,
                batch_size=settings.completion_batch_size,
            ),
        ),
    )
    runtime = ServiceRuntime(settings, definition)
    app = create_http_app(runtime, [api.router(runtime, policy)])
    app.add_middleware(api.BodySizeLimit)
    return app
