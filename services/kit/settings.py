"""Settings every service reads from its environment (pydantic-settings).

Each service subclasses `ServiceSettings`, names itself and its database URL variable
(`ORDER_DATABASE_URL`, ...). Defaults match `make infra-up`, so a local run needs no
configuration at all.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    # populate_by_name: code (tests) may pass `database_url=` as well as the env alias.
    model_config = SettingsConfigDict(
        env_prefix="OMS_", extra="ignore", frozen=True, populate_by_name=True
    )

    service_name: str
    database_url: str
    http_host: str = "127.0.0.1"
    http_port: int = Field(ge=0, le=65535)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "OMS_KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_linger_ms: int = Field(default=2, ge=0)
    topic_namespace: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]*$",
        description="Prefix of every topic name; empty for the catalogue's own names",
    )
    consumer_group: str | None = Field(
        default=None, description="Defaults to the service name (DESIGN: group id = service)"
    )
    consume_from_beginning: bool = True
    consumer_batch_size: int = Field(
        default=100,
        gt=0,
        description="Most records applied in one transaction (1: a transaction per record)",
    )
    consumer_fetch_min_bytes: int = Field(
        default=1,
        ge=1,
        description="Bytes a fetch waits for before the broker answers (up to "
        "OMS_CONSUMER_FETCH_WAIT_MS): more gives bigger batches under load, for a little latency",
    )
    consumer_fetch_wait_ms: int = Field(
        default=500, ge=0, description="Longest the broker holds a fetch for its minimum bytes"
    )
    consumers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Consumers of the service's group in one process (OMS_CONSUMERS): each "
        "fetches on its own (more fetch requests for the broker to answer)",
    )
    consumer_lanes: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Batches of disjoint partitions a consumer applies at the same time, out "
        "of one fetch (OMS_CONSUMER_LANES): one commit's latency does not bound the service",
    )
    consumer_batch_wait_ms: int = Field(
        default=1000,
        ge=0,
        description="How long a fetch waits when nothing has arrived (it returns as soon as "
        "records are there: a longer wait costs no latency, only an idle consumer's wake-ups)",
    )

    relay_batch_size: int = Field(default=500, gt=0)
    relay_idle_seconds: float = Field(default=0.5, gt=0)

    handler_max_attempts: int = Field(
        default=3, ge=1, description="Tries of a failing (non-transient) event before dead letter"
    )
    transient_retry_seconds: float = Field(
        default=20.0,
        gt=0,
        description="How long one delivery retries a transient failure before re-fetching it",
    )

    log_level: str = "INFO"
    log_json: bool = True
    trace_sample_ratio: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of traces recorded (OMS_TRACE_SAMPLE_RATIO): whole traces, decided "
        "where a trace starts (an order's submission, a command) and followed by every "
        "service through `traceparent`",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "OMS_OTLP_ENDPOINT"),
    )
    run_migrations: bool = True

    @property
    def group_id(self) -> str:
        return self.consumer_group or self.service_name


def database_url_field(service: str, port: int = 5432) -> Any:
    """The `database_url` field of one service: `<SERVICE>_DATABASE_URL`, local default."""
    role = f"oms_{service}"
    return Field(
        default=f"postgresql+asyncpg://{role}:{role}@127.0.0.1:{port}/{role}",
        validation_alias=AliasChoices(f"{service.upper()}_DATABASE_URL", "OMS_DATABASE_URL"),
    )


def return_window_field() -> Any:
    """`OMS_RETURN_WINDOW_DAYS`: days after delivery (after shipping, while undelivered)
    during which a SKU may be returned. One setting: the returns service refuses requests
    after it, and the order service completes an order once it has closed."""
    return Field(
        default=30,
        ge=0,
        validation_alias=AliasChoices("OMS_RETURN_WINDOW_DAYS"),
        description="Days after delivery during which a return may come (OMS_RETURN_WINDOW_DAYS)",
    )
