"""One order, one trace: the five services as separate processes on the real Kafka and
PostgreSQL publish their spans to the spans topic, and the spans of an order submitted by
a channel share one trace id across the order, inventory, fulfilment and notification
services, with every parent link inside that trace. A warehouse's HTTP command on the
order (ship) starts a trace of its own that reaches the same services."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts.catalogue import SPANS_TOPIC
from tests.e2e.flow import Flow, channel_order, seed_catalogue, unique
from tests.e2e.system import running_system
from tests.infrastructure import REPO, Infrastructure
from tests.kafka_tools import eventually, read_to_end

pytestmark = pytest.mark.e2e

Span = dict[str, Any]
SERVICES_OF_ONE_ORDER = {"order", "inventory", "fulfilment", "notification"}


@pytest.fixture(scope="module")
async def flow(infrastructure: Infrastructure) -> AsyncIterator[Flow]:
    async with running_system(
        infrastructure,
        REPO / "reports" / "tracing-logs",
        extra_env={
            "OMS_TRACE_EXPORT": "kafka",
            # Export finished spans every 200 ms rather than every 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    ) as system:
        yield Flow(system, infrastructure)


async def published_spans(flow: Flow) -> list[Span]:
    records = await read_to_end(
        flow.infrastructure.kafka_bootstrap_servers, flow.system.names.physical(SPANS_TOPIC)
    )
    spans = [json.loads(record.value) for record in records]
    for record, span in zip(records, spans, strict=True):
        assert record.key == span["trace_id"].encode(), "spans are keyed by their trace id"
    return spans


def by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        traces[span["trace_id"]].append(span)
    return traces


def orphans_in(trace: list[Span]) -> list[tuple[str, str]]:
    """(service, name) of the trace's spans whose parent is not in it."""
    ids = {span["span_id"] for span in trace}
    return [
        (span["service"], span["name"])
        for span in trace
        if span["parent_span_id"] is not None and span["parent_span_id"] not in ids
    ]


def settled(spans: list[Span], order_id: str) -> bool:
    """Every trace with a span naming the order has its parents published too. Each
    service exports its spans on its own schedule: a child may arrive before its parent."""
    traces = by_trace(spans)
    return not any(
        orphans_in(traces[span["trace_id"]])
        for span in spans
        if span["attributes"].get("oms.order_id") == order_id
    )


def assert_parent_links_stay_inside(trace: list[Span]) -> Span:
    """Every parent of the trace's spans is a span of the trace, but for one root."""
    roots = [span for span in trace if span["parent_span_id"] is None]
    orphans = orphans_in(trace)
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"
    assert len(roots) == 1, f"one root, found {[(s['service'], s['name']) for s in roots]}"
    return roots[0]


async def test_an_orders_spans_share_one_trace_across_its_services(flow: Flow) -> None:
    names = flow.system.names
    sku = unique("sku-traced")
    await seed_catalogue(flow.system, {sku: {"wh-paris": 10}})
    order = channel_order([(sku, 1)], locale="en")
    order_id = await flow.submit(order)
    await flow.wait_status(order_id, "confirmed")
    [shipment] = await flow.shipments(order_id, 1)
    shipped = await flow.ship(shipment["shipment_id"])
    await flow.wait_status(order_id, "shipped")
    await flow.deliver(shipped["tracking_number"])
    await flow.wait_status(order_id, "delivered")

    channel_key = f"{order.channel}:{order.external_order_id}"
    submission_span = f"{names.physical('oms.channel.orders.v1')} process"
    spans: list[Span] = []
    order_trace: list[Span] = []
    ship_trace: list[Span] = []

    def services(trace: list[Span]) -> set[str]:
        return {span["service"] for span in trace}

    async def traced_across_services() -> bool:
        spans[:] = await published_spans(flow)
        traces = by_trace(spans)
        # The trace of the order is the one its submission was consumed in.
        submissions = sorted(
            (
                span
                for span in spans
                if span["name"] == submission_span
                and span["attributes"].get("messaging.kafka.message.key") == channel_key
            ),
            key=lambda span: span["start_time"],
        )
        if not submissions:
            return False
        order_trace[:] = traces[submissions[0]["trace_id"]]
        ship_commands = [
            span
            for span in spans
            if span["name"] == "POST /shipments/{shipment_id}/ship"
            and span["attributes"].get("oms.order_id") == order_id
        ]
        ship_trace[:] = traces[ship_commands[0]["trace_id"]] if ship_commands else []
        return (
            services(order_trace) >= SERVICES_OF_ONE_ORDER
            and services(ship_trace) >= SERVICES_OF_ONE_ORDER
            and settled(spans, order_id)
        )

    try:
        await eventually(traced_across_services, timeout=60, interval=1.0)
    except AssertionError:
        (flow.system.logs / "spans.json").write_text(json.dumps(spans, indent=1))
        raise AssertionError(
            f"order trace reaches {sorted(services(order_trace))}, "
            f"ship trace reaches {sorted(services(ship_trace))}; {len(spans)} spans in all; "
            f"parents all published: {settled(spans, order_id)}"
        ) from None

    # One trace id, parents inside it, rooted where the channel's record was received.
    root = assert_parent_links_stay_inside(order_trace)
    assert root["service"] == "order" and root["kind"] == "consumer"
    by_id = {span["span_id"]: span for span in order_trace}
    order_ids = {span["attributes"].get("oms.order_id") for span in order_trace} - {None}
    assert order_ids == {order_id}, "the trace is about this order only"
    [submission] = [span for span in order_trace if span["name"] == submission_span]
    assert submission["attributes"]["oms.order_id"] == order_id, "named once the id is known"

    # The relay's publish span is a child of the transaction that recorded the event, and
    # the next service's consume span a child of that publish span.
    publishes = [span for span in order_trace if span["kind"] == "producer"]
    assert {span["service"] for span in publishes} >= {"order", "inventory", "fulfilment"}
    for publish in publishes:
        parent = by_id[publish["parent_span_id"]]
        assert (parent["name"], parent["service"]) == ("db.transaction", publish["service"])
        assert publish["attributes"]["oms.order_id"] == order_id
    for span in order_trace:
        if (
            span["kind"] == "consumer"
            and span["name"].endswith(" process")
            and span is not submission
        ):
            parent = by_id[span["parent_span_id"]]
            assert parent["kind"] == "producer" and parent["service"] != span["service"], (
                f"{span['service']} {span['name']} continues {parent['service']} {parent['name']}"
            )
    transactions = [span for span in order_trace if span["name"] == "db.transaction"]
    assert services(transactions) >= SERVICES_OF_ONE_ORDER
    for span in transactions:
        assert span["status"] == "ok"
        assert span["attributes"]["oms.service"] == span["service"]

    # The warehouse's ship command: its own trace, rooted in fulfilment's server span.
    ship_root = assert_parent_links_stay_inside(ship_trace)
    assert (ship_root["service"], ship_root["kind"]) == ("fulfilment", "server")
    assert ship_root["attributes"]["http.response.status_code"] == "200"
    emitted = [span["attributes"].get("oms.emitted", "") for span in ship_trace]
    assert any("oms.Shipped.v1" in events for events in emitted), emitted
    # Every span naming the order belongs to its submission trace or to a command on it.
    traces = by_trace(spans)
    for trace_id in {
        span["trace_id"] for span in spans if span["attributes"].get("oms.order_id") == order_id
    }:
        first = assert_parent_links_stay_inside(traces[trace_id])
        assert first is root or first["kind"] == "server", (first["service"], first["name"])
