"""The kit's spans on the real database and broker: a unit of work's `db.transaction` span,
the relay's publish span as a child of the context stored with the event, and the next
consumer's span as a child of that publish span — one trace, every span naming the order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Event
from contracts.events.order import OrderConfirmed
from services.kit.metrics import Metrics
from services.kit.relay import OutboxRelay
from services.kit.tables import outbox
from services.kit.telemetry import ORDER_ID_ATTRIBUTE, current_trace_headers
from services.kit.unit_of_work import UnitOfWork
from tests.infrastructure import Infrastructure
from tests.kafka_tools import create_topics, eventually, unique_topic
from tests.kit.harness import (
    pipeline_for,
    prepare_database,
    rows_router,
    running_consumer,
    started_producer,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def engine(infrastructure: Infrastructure) -> AsyncIterator[AsyncEngine]:
    engine = await prepare_database(await infrastructure.create_database("tracing"))
    yield engine
    await engine.dispose()


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


async def test_one_trace_runs_from_the_transaction_through_the_relay_to_the_next_consumer(
    infrastructure: Infrastructure, engine: AsyncEngine
) -> None:
    bootstrap = infrastructure.kafka_bootstrap_servers
    topic = unique_topic("traced")
    await create_topics(bootstrap, topic, partitions=1)
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("test")
    order_id = f"ord-{uuid.uuid4().hex[:8]}"

    # A handler's unit of work, inside the span of the message it handles.
    with tracer.start_as_current_span("incoming process", kind=SpanKind.CONSUMER) as consume:
        async with UnitOfWork(
            engine, source="/oms/order", tracer=tracer, service="order", topic_for=lambda _: topic
        ) as uow:
            uow.emit(OrderConfirmed(order_id=order_id, reservation_id="res-1"))

    [transaction] = spans_named(finished, "db.transaction")
    assert transaction.parent is not None
    assert transaction.parent.span_id == consume.get_span_context().span_id
    assert transaction.attributes is not None
    assert transaction.attributes[ORDER_ID_ATTRIBUTE] == order_id
    assert transaction.attributes["oms.service"] == "order"
    assert transaction.attributes["oms.emitted"] == "oms.OrderConfirmed.v1"
    assert consume.attributes is not None  # type: ignore[attr-defined]
    assert consume.attributes[ORDER_ID_ATTRIBUTE] == order_id  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        stored = dict(
            (
                await connection.execute(select(outbox.c.headers).where(outbox.c.key == order_id))
            ).scalar_one()
        )
    assert stored["traceparent"].split("-")[2] == format(span_id(transaction), "016x"), (
        "the event carries the context of the transaction that recorded it"
    )

    received: list[str] = []

    def next_service(_event: Event) -> None:
        received.append(current_trace_headers()["traceparent"])

    group = f"g-{uuid.uuid4().hex[:6]}"
    async with started_producer(bootstrap) as producer:
        relay = OutboxRelay(
            service="order", engine=engine, producer=producer, tracer=tracer, metrics=Metrics()
        )
        assert await relay.publish_batch() == 1
        pipeline = pipeline_for(
            engine,
            rows_router(before_each=next_service),
            producer,
            group,
            Metrics(),
            tracer=tracer,
            source="/oms/next",
        )
        async with running_consumer(bootstrap, topic, group, pipeline):

            async def consumed() -> bool:
                return bool(received) and bool(spans_named(finished, f"{topic} process"))

            await eventually(consumed, timeout=30)

    [publish] = spans_named(finished, f"{topic} publish")
    [process] = spans_named(finished, f"{topic} process")
    assert publish.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert publish.parent is not None and publish.parent.span_id == span_id(transaction)
    assert process.parent is not None and process.parent.span_id == span_id(publish)
    assert received[0].split("-")[2] == format(span_id(process), "016x"), (
        "the handler runs inside the consumer span"
    )
    trace_ids = {span.context.trace_id for span in (transaction, publish, process) if span.context}
    assert trace_ids == {consume.get_span_context().trace_id}
    for span in (publish, process):
        assert span.attributes is not None
        assert span.attributes[ORDER_ID_ATTRIBUTE] == order_id


async def test_a_failed_transaction_ends_its_span_as_an_error(engine: AsyncEngine) -> None:
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("test")

    with (
        tracer.start_as_current_span("POST /orders/{order_id}/cancel", kind=SpanKind.SERVER),
        pytest.raises(RuntimeError),
    ):
        async with UnitOfWork(engine, source="/oms/order", tracer=tracer) as uow:
            await uow.connection.execute(text("SELECT 1"))
            raise RuntimeError("refused by a bug")

    [transaction] = spans_named(finished, "db.transaction")
    assert transaction.status.status_code is StatusCode.ERROR
    assert "refused by a bug" in (transaction.status.description or "")


async def test_a_background_round_outside_any_trace_that_records_nothing_makes_no_span(
    engine: AsyncEngine,
) -> None:
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("test")
    assert not trace.get_current_span().is_recording()

    async with UnitOfWork(engine, source="/oms/notification", tracer=tracer) as uow:
        await uow.connection.execute(text("SELECT 1"))

    assert finished.get_finished_spans() == ()


async def test_a_background_batch_over_several_orders_ties_no_trace_together(
    engine: AsyncEngine,
) -> None:
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("test")
    first, second = (f"ord-{uuid.uuid4().hex[:8]}" for _ in range(2))

    async with UnitOfWork(engine, source="/oms/order", tracer=tracer) as uow:
        uow.emit(OrderConfirmed(order_id=first, reservation_id="res-1"))
        uow.emit(OrderConfirmed(order_id=second, reservation_id="res-2"))
    async with UnitOfWork(engine, source="/oms/order", tracer=tracer) as uow:
        uow.emit(OrderConfirmed(order_id=f"{first}-alone", reservation_id="res-3"))

    [transaction] = spans_named(finished, "db.transaction")
    assert transaction.parent is None
    assert transaction.attributes is not None
    assert transaction.attributes[ORDER_ID_ATTRIBUTE] == f"{first}-alone"
    async with engine.connect() as connection:
        batch_headers = (
            await connection.execute(
                select(outbox.c.headers).where(outbox.c.key.in_([first, second]))
            )
        ).scalars()
        assert all("traceparent" not in dict(headers) for headers in batch_headers)
