"""Wires the operations view: settings, runtime (a consumer of every catalogue topic),
the dead-letter and span consumer, the consumer-lag job, and the dashboard."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import Field, field_validator

from contracts.catalogue import TOPICS
from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field
from services.operations import api, handlers, jobs
from services.operations.domain import OPEN_STAGES, Stage, StuckThresholds

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
STATIC = Path(__file__).parent / "static"

DAY = 86_400.0
DEFAULT_STUCK_AFTER = {
    Stage.PLACED.value: 60.0,
    Stage.CONFIRMED.value: 600.0,
    Stage.SHIPPED.value: 3 * DAY,
    # Delivered orders complete once the return window (30 days) has passed.
    Stage.DELIVERED.value: 35 * DAY,
    Stage.RETURN_REQUESTED.value: 14 * DAY,
    Stage.RETURNED.value: 1 * DAY,
}


class OperationsSettings(ServiceSettings):
    service_name: str = "operations"
    http_port: int = 8006
    database_url: str = database_url_field("operations")
    stuck_after_seconds: dict[str, float] = Field(
        default=DEFAULT_STUCK_AFTER,
        description="Per open order state, seconds after which an order in it counts as "
        'stuck (JSON object, e.g. {"placed": 60, "confirmed": 600})',
    )
    live_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often the dashboard's live stream sends an update"
    )
    lag_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often consumer lag is read from Kafka"
    )
    raw_batch_records: int = Field(default=500, gt=0)
    raw_retry_seconds: float = Field(default=2.0, gt=0)

    @field_validator("stuck_after_seconds")
    @classmethod
    def _open_states_only(cls, limits: dict[str, float]) -> dict[str, float]:
        known = {stage.value for stage in OPEN_STAGES}
        unknown = sorted(set(limits) - known)
        if unknown:
            raise ValueError(f"not open order states: {unknown}; known: {sorted(known)}")
        if any(seconds <= 0 for seconds in limits.values()):
            raise ValueError("thresholds must be positive")
        return limits

    def thresholds(self) -> StuckThresholds:
        return StuckThresholds(
            {
                Stage(name): timedelta(seconds=seconds)
                for name, seconds in self.stuck_after_seconds.items()
            }
        )


def create_app(settings: OperationsSettings | None = None) -> FastAPI:
    settings = settings or OperationsSettings()
    definition = ServiceDefinition(
        name="operations",
        migrations=MIGRATIONS,
        router=handlers.router(),
        # Every catalogue topic; the dead-letter topics and spans are not contract events
        # and are read by the raw-record job.
        topics=tuple(topic.name for topic in TOPICS),
        invalid_record_handler=handlers.invalid_record_handler(),
        publishes_spans=False,
        background=(
            jobs.raw_records(
                batch_records=settings.raw_batch_records, retry_seconds=settings.raw_retry_seconds
            ),
            jobs.consumer_lag(interval_seconds=settings.lag_interval_seconds),
        ),
    )
    runtime = ServiceRuntime(settings, definition)
    app = create_http_app(
        runtime,
        [api.router(runtime, settings.thresholds(), live_interval=settings.live_interval_seconds)],
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
