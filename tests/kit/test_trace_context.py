"""Unsampled traces cost nothing: their context is read from `traceparent` by hand and
carried on as it is, with no span made."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext

from services.kit.batch import consumer_span, unsampled_context
from services.kit.dead_letters import ConsumedRecord

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def record() -> ConsumedRecord:
    return ConsumedRecord(topic="t", partition=0, offset=0, key=b"k", value=b"{}", headers=[])


def test_an_unsampled_traceparent_is_read_as_the_remote_parent() -> None:
    context = unsampled_context(f"00-{TRACE_ID}-{SPAN_ID}-00")
    assert context == SpanContext(
        trace_id=int(TRACE_ID, 16), span_id=int(SPAN_ID, 16), is_remote=True
    )


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE_ID}-{SPAN_ID}-01",  # sampled: a real span is made
        None,
        "garbage",
        f"00-{TRACE_ID}-{SPAN_ID}",
        f"01-{TRACE_ID}-{SPAN_ID}-00",  # a version this reading does not know
        f"00-{'0' * 32}-{SPAN_ID}-00",  # an invalid trace id
        f"00-{TRACE_ID}-zzzzzzzzzzzzzzzz-00",
    ],
)
def test_anything_else_is_left_to_the_propagator(traceparent: str | None) -> None:
    assert unsampled_context(traceparent) is None


def test_a_record_of_an_unsampled_trace_gets_no_span_of_its_own() -> None:
    tracer = TracerProvider().get_tracer("test")
    span = consumer_span(tracer, record(), {"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-00"})
    assert not span.is_recording()
    assert format(span.get_span_context().span_id, "016x") == SPAN_ID


def test_a_record_of_a_sampled_trace_gets_its_consumer_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    span = consumer_span(tracer, record(), {"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01"})
    assert span.is_recording()
    assert format(span.get_span_context().trace_id, "032x") == TRACE_ID
    assert format(span.get_span_context().span_id, "016x") != SPAN_ID
