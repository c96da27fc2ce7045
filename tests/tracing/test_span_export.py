"""The Kafka span exporter: the JSON each finished span becomes on the spans topic, and
what happens when Kafka cannot be reached (spans dropped and counted, the service's event
loop never held up)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from services.kit.span_export import KafkaSpanExporter, _iso_time
from tests.infrastructure import Infrastructure
from tests.kafka_tools import create_topics, eventually, read_all, unique_topic

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
ISO_MICROSECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_times_are_iso_8601_utc_with_exact_microseconds() -> None:
    # 2024-05-06T07:08:09.123456789Z, beyond float precision at microseconds
    assert _iso_time(1_714_979_289_123_456_789) == "2024-05-06T07:08:09.123456Z"
    assert _iso_time(1_714_979_289_000_000_999) == "2024-05-06T07:08:09.000000Z"


@pytest.mark.integration
async def test_each_finished_span_is_published_as_json_keyed_by_its_trace_id(
    infrastructure: Infrastructure,
) -> None:
    topic = unique_topic("spans")
    await create_topics(infrastructure.kafka_bootstrap_servers, topic, partitions=1)
    registry = CollectorRegistry()
    exporter = KafkaSpanExporter(
        service="order",
        bootstrap_servers=infrastructure.kafka_bootstrap_servers,
        topic=topic,
        registry=registry,
    )
    await exporter.start()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span(
            "oms.order.v1 process",
            kind=SpanKind.CONSUMER,
            attributes={
                "oms.order_id": "ord-1",
                "attempt": 2,
                "retried": True,
                "tags": ["a", "b"],
                "messaging.kafka.message.key": b"webshop:ext-1",
            },
        ) as parent,
        tracer.start_as_current_span("db.transaction") as child,
    ):
        child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    await exporter.stop()

    records = await read_all(infrastructure.kafka_bootstrap_servers, topic, expect=2)
    documents = {json.loads(record.value)["name"]: record for record in records}
    assert set(documents) == {"oms.order.v1 process", "db.transaction"}
    consume = json.loads(documents["oms.order.v1 process"].value)
    transaction = json.loads(documents["db.transaction"].value)
    trace_id = format(parent.get_span_context().trace_id, "032x")
    for record in documents.values():
        assert record.key == trace_id.encode()
    for document in (consume, transaction):
        assert set(document) == {
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "service",
            "kind",
            "start_time",
            "end_time",
            "status",
            "attributes",
        }
        assert HEX32.match(document["trace_id"]) and document["trace_id"] == trace_id
        assert HEX16.match(document["span_id"])
        assert ISO_MICROSECONDS.match(document["start_time"])
        assert ISO_MICROSECONDS.match(document["end_time"])
        assert document["start_time"] <= document["end_time"]
        assert document["service"] == "order"
        assert all(isinstance(value, str) for value in document["attributes"].values())
    assert consume["parent_span_id"] is None
    assert consume["kind"] == "consumer" and consume["status"] == "ok"
    assert consume["attributes"] == {
        "oms.order_id": "ord-1",
        "attempt": "2",
        "retried": "true",
        "tags": '["a", "b"]',
        "messaging.kafka.message.key": "webshop:ext-1",
    }
    assert transaction["parent_span_id"] == consume["span_id"]
    assert transaction["span_id"] == format(child.get_span_context().span_id, "016x")
    assert transaction["kind"] == "internal" and transaction["status"] == "error"
    assert exporter.exported == 2 and exporter.dropped == 0
    assert registry.get_sample_value("oms_spans_exported_total", {"service": "order"}) == 2


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens once the probe is closed


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # holds the connection open without a word until the client leaves
    writer.close()


@pytest.mark.parametrize("outage", ["connection refused", "broker silent"])
async def test_kafka_down_drops_spans_with_a_count_and_one_log_line_and_never_stalls_the_loop(
    outage: str,
) -> None:
    # A silent broker (accepts, never answers) is the harder case: anything that waited
    # for Kafka on the service's loop would stall it for the whole send timeout.
    silent = await asyncio.start_server(_never_answer, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    port = _closed_port() if outage == "connection refused" else silent_port
    registry = CollectorRegistry()
    exporter = KafkaSpanExporter(
        service="inventory",
        bootstrap_servers=f"127.0.0.1:{port}",
        topic="oms.telemetry.spans.v1",
        registry=registry,
        max_buffered=200,
        send_timeout_seconds=1.0,
        retry_seconds=0.2,
    )
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=20, max_export_batch_size=100)
    )
    tracer = provider.get_tracer("test")
    spans = 3_000
    worst_lag = 0.0

    async def measure_loop_lag() -> None:
        nonlocal worst_lag
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst_lag = max(worst_lag, time.perf_counter() - before - 0.01)

    with capture_logs() as logs:
        started = time.perf_counter()
        await exporter.start()
        assert time.perf_counter() - started < 0.1, "start() must not wait for Kafka"
        ticker = asyncio.create_task(measure_loop_lag())
        try:
            # A service at work: spans finish in bursts while it keeps handling things.
            for burst in range(30):
                for number in range(spans // 30):
                    with tracer.start_as_current_span(f"work {burst}.{number}"):
                        pass
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # the sender tries Kafka and gives up at least once
        finally:
            ticker.cancel()
        provider.shutdown()
        stopping = time.perf_counter()
        await exporter.stop(timeout_seconds=2.0)
        stop_seconds = time.perf_counter() - stopping
        silent.close()

    assert exporter.exported == 0
    assert exporter.dropped == spans, "every span is accounted for as dropped"
    dropped_by_reason = {
        reason: registry.get_sample_value(
            "oms_spans_dropped_total", {"service": "inventory", "reason": reason}
        )
        or 0
        for reason in ("kafka_unavailable", "buffer_full", "stopped")
    }
    assert sum(dropped_by_reason.values()) == spans
    assert dropped_by_reason["kafka_unavailable"] > 0
    assert dropped_by_reason["buffer_full"] > 0
    failing = [entry for entry in logs if entry["event"].startswith("span export failing")]
    assert len(failing) == 1, "one log line per outage, not one per span"
    # A loaded 2-core machine shows lags of a few hundred ms on its own; waiting for Kafka
    # would show the 1 s send timeout at least.
    assert worst_lag < 0.75, f"the event loop stalled {worst_lag:.3f} s"
    assert stop_seconds < 3.5


class _BootstrapGate:
    """A TCP forwarder in front of the broker's bootstrap address that can be closed
    (connections refused) and opened. Closed, the exporter cannot reach Kafka at all."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self.port = _closed_port()
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.mark.integration
async def test_span_export_resumes_once_kafka_answers_again(
    infrastructure: Infrastructure,
) -> None:
    topic = unique_topic("spans-resume")
    await create_topics(infrastructure.kafka_bootstrap_servers, topic, partitions=1)
    gate = _BootstrapGate(infrastructure.kafka_bootstrap_servers)
    exporter = KafkaSpanExporter(
        service="fulfilment",
        bootstrap_servers=f"127.0.0.1:{gate.port}",
        topic=topic,
        send_timeout_seconds=1.0,
        retry_seconds=0.2,
        max_retry_seconds=0.5,
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=20))
    tracer = provider.get_tracer("test")
    with capture_logs() as logs:
        await exporter.start()
        try:
            with tracer.start_as_current_span("while kafka is away"):
                pass

            async def dropped() -> bool:
                return exporter.dropped == 1

            await eventually(dropped, timeout=10)
            await gate.open()
            with tracer.start_as_current_span("once kafka is back"):
                pass

            async def exported() -> bool:
                return exporter.exported == 1

            await eventually(exported, timeout=20)
        finally:
            provider.shutdown()
            await exporter.stop()
            await gate.close()

    records = await read_all(infrastructure.kafka_bootstrap_servers, topic, expect=1)
    assert [json.loads(record.value)["name"] for record in records] == ["once kafka is back"]
    events = [entry["event"] for entry in logs]
    assert any(event.startswith("span export failing") for event in events)
    assert "span export resumed" in events
