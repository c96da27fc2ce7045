"""OpenTelemetry tracing. Trace context crosses services inside the Kafka headers
(W3C `traceparent`): the consumer pipeline extracts it on consume, the outbox
stores it with each event, and the relay injects it again on publish. HTTP commands get a
server span here too, so events they cause start (or continue a caller's) trace.

Spans that concern one order carry its id as the `oms.order_id` attribute, so the
operations view can find an order's spans whatever trace they belong to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.base import OrderEvent
from contracts.catalogue import UnknownEventType, event_class_for
from contracts.wire import HEADER_SUBJECT, HEADER_TYPE

ORDER_ID_ATTRIBUTE = "oms.order_id"
"""The order a span concerns; the operations view finds an order's spans by it."""
MESSAGE_KEY_ATTRIBUTE = "messaging.kafka.message.key"


def create_tracer_provider(
    service: str,
    *,
    otlp_endpoint: str | None,
    extra_processors: Sequence[SpanProcessor] = (),
    sample_ratio: float = 1.0,
) -> TracerProvider:
    """A provider per service (not the global one), so several services can share a
    process in tests without their spans mixing. Whole traces are sampled: a trace is
    kept or not where it starts (by its id, at `sample_ratio`), and every span after
    follows its parent's decision, in this service and the next."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"oms-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
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


def order_id_from_headers(headers: Mapping[str, Any]) -> str | None:
    """The order id of an event record, from its CloudEvents headers: the subject of an
    order event (other events' subjects are SKUs or a channel's own order reference)."""
    event_type, subject = headers.get(HEADER_TYPE), headers.get(HEADER_SUBJECT)
    if not isinstance(event_type, str) or not isinstance(subject, str) or not subject:
        return None
    try:
        event_class = event_class_for(event_type)
    except UnknownEventType:
        return None
    return subject if issubclass(event_class, OrderEvent) else None


def order_span_attributes(headers: Mapping[str, Any]) -> dict[str, str]:
    order_id = order_id_from_headers(headers)
    return {ORDER_ID_ATTRIBUTE: order_id} if order_id else {}


UNTRACED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Reads change nothing and emit nothing; dashboards and health checks poll them."""


class ServerSpanMiddleware:
    """A SERVER span around each HTTP command (ASGI), current while the endpoint runs, so
    the events its unit of work records carry a trace. A caller's `traceparent` header is
    continued; otherwise the command starts a trace of its own."""

    def __init__(self, app: ASGIApp, *, tracer_provider: TracerProvider) -> None:
        self._app = app
        self._tracer = tracer_provider.get_tracer("oms.kit.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in UNTRACED_METHODS:
            await self._app(scope, receive, send)
            return
        method: str = scope["method"]
        caller = propagate.extract(
            {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        )
        status_code = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        with self._tracer.start_as_current_span(
            f"{method} {scope['path']}",
            context=caller,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            try:
                await self._app(scope, receive, send_noting_status)
            finally:
                # The router has matched by now: name the span by its route template.
                route = getattr(scope.get("route"), "path", None)
                if isinstance(route, str):
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status_code)
                if status_code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
