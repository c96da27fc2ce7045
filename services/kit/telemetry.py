"""OpenTelemetry tracing. Trace context crosses services inside the Kafka headers
(W3C `traceparent`): FastStream's telemetry middleware extracts it on consume, the outbox
stores it with each event, and the relay injects it again on publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def create_tracer_provider(
    service: str,
    *,
    otlp_endpoint: str | None,
    extra_processors: Sequence[SpanProcessor] = (),
) -> TracerProvider:
    """A provider per service (not the global one), so several services can share a
    process in tests without their spans mixing."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"oms-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    return provider


def current_trace_headers() -> dict[str, str]:
    """The current trace context as headers (`traceparent`, `tracestate`)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str]) -> Context:
    return propagate.extract(dict(headers))
