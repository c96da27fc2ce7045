"""Everything a service runs besides its own logic, built from its settings: database
engine, migrations, outbox relay, consumer, dead letters, tracing, metrics, and the HTTP
app that hosts them (`/health`, `/ready`, `/metrics` plus the service's own routes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.kit import migrations
from services.kit.batch import Router
from services.kit.consumer import ConsumerLoop
from services.kit.dead_letters import DeadLetterPublisher
from services.kit.kafka import ResilientProducer, create_producer
from services.kit.logs import configure_logging, get_logger
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline, InvalidRecordHandler
from services.kit.relay import OutboxRelay
from services.kit.settings import ServiceSettings
from services.kit.span_export import kafka_span_exporter
from services.kit.telemetry import ServerSpanMiddleware, create_tracer_provider
from services.kit.topics import TopicNames
from services.kit.unit_of_work import Cause, UnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    migrations: Path
    """The service's own Alembic versions folder (the kit's runs beside it)."""
    router: Router[Any] | None
    """The consumed events the service applies, and how (None: it consumes nothing)."""
    topics: Sequence[str] | None = None
    """Topics to consume (catalogue names); by default those the catalogue lists."""
    invalid_record_handler: InvalidRecordHandler | None = None
    background: Sequence[Callable[[ServiceRuntime], Coroutine[Any, Any, None]]] = ()
    publishes_spans: bool = True
    """Whether its spans go to the spans topic (the operations view, which reads that topic,
    would only read its own spans back: they go to OTLP alone, when one is configured)."""
    """Long-running jobs of the service (schedulers, dispatchers), started with it."""


def create_engine(database_url: str) -> AsyncEngine:
    # No ping on every checkout (three round trips per transaction): a connection that died
    # with the server fails its first statement as a transient error, which is retried on a
    # fresh connection after SQLAlchemy has invalidated the pool.
    return create_async_engine(database_url, pool_size=10, max_overflow=20)


async def create_pool(database_url: str, service: str) -> asyncpg.Pool:
    """asyncpg connections for applying consumed batches, without SQLAlchemy's per-statement
    work. Custom plans always: a prepared statement over arrays (`= ANY($1)`, `unnest`)
    switches to a generic plan after five runs, and for batches of a hundred that plan
    cost four times as much CPU here (117 µs against 433 µs per event, measured)."""
    return await asyncpg.create_pool(
        database_url.replace("postgresql+asyncpg://", "postgresql://", 1),
        min_size=1,
        max_size=4,
        server_settings={"plan_cache_mode": "force_custom_plan", "application_name": service},
        reset=_keep_session,
    )


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: batches run in a
    transaction and leave no session state behind (no SET, no LISTEN, no advisory lock),
    so asyncpg's default reset would only cost a round trip per batch."""


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        definition: ServiceDefinition,
        *,
        span_processors: Sequence[SpanProcessor] = (),
    ) -> None:
        self.settings = settings
        self.definition = definition
        self.metrics = Metrics()
        self.topic_names = TopicNames(settings.topic_namespace)
        self.span_exporter = (
            kafka_span_exporter(
                service=definition.name,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic_names=self.topic_names,
                registry=self.metrics.registry,
            )
            if definition.publishes_spans
            else None
        )
        self.tracer_provider = create_tracer_provider(
            definition.name,
            otlp_endpoint=settings.otel_exporter_otlp_endpoint,
            sample_ratio=settings.trace_sample_ratio,
            extra_processors=[
                *span_processors,
                *([BatchSpanProcessor(self.span_exporter)] if self.span_exporter else []),
            ],
        )
        self.tracer = self.tracer_provider.get_tracer("oms.kit")
        self.engine = create_engine(settings.database_url)
        self.source = f"/oms/{definition.name}"
        self.topics = (
            tuple(self.topic_names.physical(name) for name in definition.topics)
            if definition.topics is not None
            else self.topic_names.consumed_by(definition.name)
        )
        # aiokafka clients bind to the running event loop, so they are made in start().
        self.producer: ResilientProducer | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[ConsumerLoop] = []
        self.pool: asyncpg.Pool | None = None
        """The consumer's connections: batches run on asyncpg directly (see create_pool)."""
        self._tasks: list[asyncio.Task[None]] = []

    def unit_of_work(self, cause: Cause | None = None) -> UnitOfWork:
        return UnitOfWork(
            self.engine,
            source=self.source,
            cause=cause,
            on_committed=self._wake,
            topic_for=self.topic_names.of_event,
            tracer=self.tracer,
            service=self.definition.name,
        )

    def _wake(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def start(self) -> None:
        settings = self.settings
        if self.span_exporter is not None:
            await self.span_exporter.start()  # never waits for Kafka
        if settings.run_migrations:
            await asyncio.to_thread(
                migrations.upgrade, settings.database_url, self.definition.migrations
            )
        self.producer = create_producer(settings, client_id=f"oms-{self.definition.name}")
        await self.producer.start()
        self.relay = OutboxRelay(
            service=self.definition.name,
            engine=self.engine,
            producer=self.producer,
            tracer=self.tracer,
            metrics=self.metrics,
            batch_size=settings.relay_batch_size,
            idle_seconds=settings.relay_idle_seconds,
        )
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self.topics and self.definition.router is not None:
            self.pool = await create_pool(settings.database_url, self.definition.name)
            pipeline = EventPipeline(
                service=self.definition.name,
                connect=self.pool.acquire,
                router=self.definition.router,
                source=self.source,
                unit_of_work=self.unit_of_work,
                on_committed=self._wake,
                dead_letters=DeadLetterPublisher(
                    self.producer,
                    settings.group_id,
                    topic=self.topic_names.dead_letters(settings.group_id),
                ),
                metrics=self.metrics,
                max_attempts=settings.handler_max_attempts,
                transient_retry_seconds=settings.transient_retry_seconds,
                invalid_record_handler=self.definition.invalid_record_handler,
                topic_names=self.topic_names,
                tracer=self.tracer,
            )
            # Each partition is applied in order, by one consumer of the group at a time.
            self.consumers = [
                ConsumerLoop(
                    pipeline,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    topics=self.topics,
                    group_id=self.topic_names.consumer_group(settings.group_id),
                    client_id=f"oms-{self.definition.name}-{instance + 1}",
                    from_beginning=settings.consume_from_beginning,
                    max_batch=settings.consumer_batch_size,
                    batch_wait_ms=settings.consumer_batch_wait_ms,
                    fetch_min_bytes=settings.consumer_fetch_min_bytes,
                    fetch_wait_ms=settings.consumer_fetch_wait_ms,
                    lanes=settings.consumer_lanes,
                )
                for instance in range(settings.consumers)
            ]
            for consumer in self.consumers:
                await consumer.start()
        for job in self.definition.background:
            self._tasks.append(asyncio.create_task(job(self), name=job.__name__))
        log.info("service started", topics=list(self.topics), group=self.settings.group_id)

    async def stop(self) -> None:
        # Stop taking new events first, then let the relay finish its current batch.
        for consumer in self.consumers:
            await consumer.stop()
        for task in reversed(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()
        await self.engine.dispose()
        self.tracer_provider.shutdown()
        if self.span_exporter is not None:
            await self.span_exporter.stop()
        log.info("service stopped")

    async def is_ready(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True


def create_http_app(runtime: ServiceRuntime, routers: Sequence[APIRouter] = ()) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"OMS {runtime.definition.name} service",
        lifespan=lifespan,
        # FastAPI answers 400 on its own for a body it cannot even parse (not UTF-8,
        # nested too deep): say so in every operation's contract.
        responses={400: {"description": "The request body could not be parsed"}},
    )
    app.state.runtime = runtime
    app.add_middleware(ServerSpanMiddleware, tracer_provider=runtime.tracer_provider)

    @app.get("/health", tags=["operations"], summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": runtime.definition.name}

    @app.get("/ready", tags=["operations"], summary="The database answers")
    async def ready(response: Response) -> dict[str, str]:
        if await runtime.is_ready():
            return {"status": "ready"}
        response.status_code = 503
        return {"status": "database unavailable"}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one service as its own OS process until SIGINT/SIGTERM."""
    configure_logging(settings.service_name, level=settings.log_level, json=settings.log_json)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
