"""Finished spans published to Kafka, so the operations view can draw one order's trace
without a collector or a trace viewer (none can be installed where this runs).

Each span becomes one JSON record on `oms.telemetry.spans.v1` (namespaced like every
topic), keyed by its trace id so the spans of one trace stay together:

    {"trace_id": 32 hex, "span_id": 16 hex, "parent_span_id": 16 hex or null,
     "name": ..., "service": "order", "kind": "server|client|producer|consumer|internal",
     "start_time": ISO 8601 UTC with microseconds, "end_time": ...,
     "status": "ok|error", "attributes": {string: string}}

Telemetry must never hold up or break a service: the SDK's `BatchSpanProcessor` calls
`export()` from its own thread, which only appends to a bounded buffer; a task on the
service's event loop sends the buffer with its own producer (acks=1). When Kafka is
unreachable or the buffer is full, spans are dropped, counted and logged once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry, Counter
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.catalogue import SPANS_TOPIC
from services.kit.logs import get_logger
from services.kit.topics import TopicNames

log = get_logger(__name__)

SpanRecord = tuple[bytes, bytes]
"""(key, value) of one span on the spans topic."""


class TraceExportSettings(BaseSettings):
    """`OMS_TRACE_EXPORT`: where finished spans go besides OTLP (which is on whenever
    `OTEL_EXPORTER_OTLP_ENDPOINT` is set)."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore", frozen=True)

    trace_export: Literal["kafka", "none"] = "kafka"


def kafka_span_exporter(
    *, service: str, bootstrap_servers: str, topic_names: TopicNames, registry: CollectorRegistry
) -> KafkaSpanExporter | None:
    """The exporter a service runs, or None when `OMS_TRACE_EXPORT=none`."""
    if TraceExportSettings().trace_export != "kafka":
        return None
    return KafkaSpanExporter(
        service=service,
        bootstrap_servers=bootstrap_servers,
        topic=topic_names.physical(SPANS_TOPIC),
        registry=registry,
    )


def span_to_json(span: ReadableSpan, *, service: str) -> dict[str, object]:
    context = span.context
    assert context is not None, "a finished SDK span always has its context"
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "service": service,
        "kind": span.kind.name.lower(),
        "start_time": _iso_time(span.start_time),
        "end_time": _iso_time(span.end_time if span.end_time is not None else span.start_time),
        "status": "error" if span.status.status_code is StatusCode.ERROR else "ok",
        "attributes": {
            name: _attribute_text(value) for name, value in (span.attributes or {}).items()
        },
    }


def encode_span(span: ReadableSpan, *, service: str) -> SpanRecord:
    document = span_to_json(span, service=service)
    return (
        str(document["trace_id"]).encode(),
        json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode(),
    )


def _iso_time(nanoseconds: int | None) -> str:
    """Microsecond precision, computed in integers (a float loses microseconds)."""
    nanoseconds = nanoseconds or 0
    seconds, remainder = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=remainder // 1000)
    # The same spelling as the events' `ce_time` header.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _attribute_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Sequence):
        return json.dumps([_attribute_text(item) for item in value])
    return str(value)


class KafkaSpanExporter(SpanExporter):
    """An OpenTelemetry `SpanExporter` (use it through a `BatchSpanProcessor`) publishing
    each finished span to the spans topic. `start()` and `stop()` run on the service's
    event loop, with the rest of the runtime."""

    def __init__(
        self,
        *,
        service: str,
        bootstrap_servers: str,
        topic: str = SPANS_TOPIC,
        registry: CollectorRegistry | None = None,
        max_buffered: int = 10_000,
        send_timeout_seconds: float = 5.0,
        retry_seconds: float = 2.0,
        max_retry_seconds: float = 30.0,
    ) -> None:
        self.service = service
        self.topic = topic
        self._bootstrap_servers = bootstrap_servers
        self._max_buffered = max_buffered
        self._send_timeout_seconds = send_timeout_seconds
        self._retry_seconds = retry_seconds
        self._max_retry_seconds = max_retry_seconds
        self._retry_delay = retry_seconds
        # export() runs on the processor's thread, the sender on the event loop.
        self._lock = threading.Lock()
        self._buffer: deque[SpanRecord] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._closed = False
        self._failing = False
        self._overflowing = False
        self.exported = 0
        self.dropped = 0
        registry = registry if registry is not None else CollectorRegistry()
        self._exported_total = Counter(
            "oms_spans_exported_total",
            "Finished spans published to the spans topic",
            ["service"],
            registry=registry,
        ).labels(service)
        self._dropped_total = Counter(
            "oms_spans_dropped_total",
            "Finished spans dropped because Kafka was unreachable or the buffer was full",
            ["service", "reason"],
            registry=registry,
        )

    # -- the processor's side (any thread) ---------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        records = [encode_span(span, service=self.service) for span in spans]
        with self._lock:
            closed = self._closed
            room = 0 if closed else max(self._max_buffered - len(self._buffer), 0)
            self._buffer.extend(records[:room])
            overflow = len(records) - min(room, len(records))
        if overflow:
            self._drop(overflow, "stopped" if closed else "buffer_full")
            if not closed and not self._overflowing:
                self._overflowing = True
                log.warning(
                    "span buffer full; spans are dropped until it drains",
                    topic=self.topic,
                    buffered=self._max_buffered,
                )
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(wakeup.set)
        # Always a success for the SDK: a failed telemetry export must not be retried
        # by the caller nor reported as the service's error.
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """The SDK's shutdown (from `TracerProvider.shutdown`): nothing to release here;
        the buffer is flushed and the producer closed by `stop()` on the event loop."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def _drop(self, count: int, reason: str) -> None:
        with self._lock:
            self.dropped += count
        self._dropped_total.labels(self.service, reason).inc(count)

    # -- the event loop's side ---------------------------------------------------------

    async def start(self) -> None:
        """Never fails and never waits for Kafka: connecting happens in the sender task."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._sender = asyncio.create_task(self._send_forever(), name="span-export")

    async def stop(self, timeout_seconds: float = 5.0) -> None:
        """Send what is buffered (within `timeout_seconds`), then close. Spans finished
        after this are dropped."""
        # Let wake-ups scheduled by a last export() (from TracerProvider.shutdown) run.
        await asyncio.sleep(0)
        with self._lock:
            self._closed = True
        if self._sender is not None:
            assert self._wakeup is not None and self._stopping is not None
            self._wakeup.set()
            self._stopping.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._sender), timeout_seconds)
            except TimeoutError:
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sender
            self._sender = None
        with self._lock:
            left, self._buffer = len(self._buffer), deque()
        if left:
            self._drop(left, "stopped")
            log.warning("spans dropped at shutdown", spans=left, topic=self.topic)
        await self._close_producer()

    async def _send_forever(self) -> None:
        assert self._wakeup is not None
        while True:
            with self._lock:
                batch = list(self._buffer)
                self._buffer.clear()
                closing = self._closed
            if batch:
                await self._send(batch)
            elif closing:
                return
            else:
                await self._wakeup.wait()
                self._wakeup.clear()

    async def _send(self, batch: list[SpanRecord]) -> None:
        try:
            producer = await self._connected_producer()
            deliveries = [
                await asyncio.wait_for(
                    producer.send(self.topic, key=key, value=value),
                    self._send_timeout_seconds,
                )
                for key, value in batch
            ]
            await asyncio.wait_for(asyncio.gather(*deliveries), self._send_timeout_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._drop(len(batch), "kafka_unavailable")
            if not self._failing:
                self._failing = True
                log.warning(
                    "span export failing; spans are dropped until Kafka answers",
                    topic=self.topic,
                    spans=len(batch),
                    error=repr(error),
                )
            await self._close_producer()
            # Spans finished meanwhile wait in the (bounded) buffer; beyond it they drop.
            # Back off: each attempt costs a connection try and a log line from aiokafka.
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._retry_delay)
            self._retry_delay = min(self._retry_delay * 2, self._max_retry_seconds)
            return
        with self._lock:
            self.exported += len(batch)
        self._exported_total.inc(len(batch))
        self._overflowing = False
        self._retry_delay = self._retry_seconds
        if self._failing:
            self._failing = False
            log.info("span export resumed", topic=self.topic, dropped_so_far=self.dropped)

    async def _connected_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap_servers,
                client_id=f"oms-{self.service}-spans",
                # Telemetry: a lost span is acceptable, a slowed service is not.
                acks=1,
                linger_ms=50,
                request_timeout_ms=int(self._send_timeout_seconds * 1000),
            )
            try:
                await asyncio.wait_for(producer.start(), self._send_timeout_seconds)
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self._send_timeout_seconds)
