"""The operations view against the real broker and database: it projects every topic,
the dead-letter topics and the span topic; it can be rebuilt from the beginning into an
empty database with the same result; it reads consumer lag from Kafka's offsets; and it
replays dead letters to their source topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.base import Event
from contracts.catalogue import SPANS_TOPIC
from contracts.events.channel import OrderSubmitted
from contracts.events.common import SkuQuantity
from contracts.events.inventory import LowStockDetected, StockRestocked
from contracts.events.notification import NotificationChannel, NotificationFailed
from contracts.events.order import OrderConfirmed, OrderPlaced
from contracts.events.returns import ReturnReasonCode, ReturnRequested, ReturnRequestLine
from contracts.wire import encode
from services.kit.topics import TopicNames
from services.operations import db
from services.operations.app import OperationsSettings, create_app
from tests.e2e.flow import channel_order
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually, publish, read_to_end
from tests.notification import samples
from tests.service_harness import fresh_namespace, running_service, settings_environment

pytestmark = pytest.mark.integration

CHANNEL = "oms.channel.orders.v1"
NOW = datetime.now(UTC).replace(microsecond=0)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
POISON = b"\xff\x00 this is not an order"


def traced(event: Event, trace_id: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    record = encode(event, source="/test")
    parent = uuid.uuid4().hex[:16]
    return (
        record.key,
        record.value,
        [*record.headers, ("traceparent", f"00-{trace_id}-{parent}-01".encode())],
    )


def span(
    span_id: str, parent: str | None, service: str, start_ms: int, end_ms: int, order_id: str
) -> bytes:
    def moment(ms: int) -> str:
        return (NOW + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")

    return json.dumps(
        {
            "trace_id": TRACE_ID,
            "span_id": span_id,
            "parent_span_id": parent,
            "name": f"{service} handle",
            "service": service,
            "kind": "consumer",
            "start_time": moment(start_ms),
            "end_time": moment(end_ms),
            "status": "ok",
            "attributes": {"oms.order_id": order_id},
        }
    ).encode()


@dataclass
class Scenario:
    names: TopicNames
    flowing: str
    stuck: str
    source_offset: int
    letters: int


def _operations(
    infrastructure: Infrastructure, names: TopicNames, database_url: str, group: str = "operations"
) -> Any:
    return create_app(
        OperationsSettings(
            **settings_environment(infrastructure, names, database_url),
            consumer_group=group,
            lag_interval_seconds=0.5,
            live_interval_seconds=0.2,
            stuck_after_seconds={"placed": 60, "confirmed": 600},
        )
    )


async def publish_scenario(infrastructure: Infrastructure, names: TopicNames) -> Scenario:
    bootstrap = infrastructure.kafka_bootstrap_servers
    flowing, stuck = f"ord-{uuid.uuid4().hex[:8]}", f"ord-{uuid.uuid4().hex[:8]}"
    submitted = channel_order([("MUG-01", 2)], external_order_id=f"WS-{flowing}")
    placed = samples.order_placed(flowing)
    assert placed.external_order_id == submitted.external_order_id
    events: list[Event] = [
        submitted,
        placed,
        OrderConfirmed(order_id=flowing, reservation_id="res-1"),
        samples.shipped(flowing),
        samples.delivered(flowing),
        ReturnRequested(
            order_id=flowing,
            return_id="rma-1",
            lines=(
                ReturnRequestLine(sku="MUG-01", quantity=1, reason_code=ReturnReasonCode.DAMAGED),
            ),
            requested_at=NOW,
        ),
        NotificationFailed(
            subject_key=flowing,
            notification_id="ntf-1",
            cause_event_id=placed.event_id,
            cause_event_type=OrderPlaced.event_type(),
            channel=NotificationChannel.EMAIL,
            recipient="ada@example.com",
            template="order_placed",
            attempts=5,
            error="550 mailbox unavailable",
        ),
        samples.order_placed(stuck).model_copy(update={"occurred_at": NOW - timedelta(hours=2)}),
        LowStockDetected(sku="MUG-01", warehouse_id="wh-paris-1", available=3, threshold=5),
        LowStockDetected(
            sku="TEA-02",
            warehouse_id="wh-paris-1",
            available=1,
            threshold=5,
            occurred_at=NOW - timedelta(minutes=5),
        ),
        StockRestocked(
            order_id=flowing,
            return_id="rma-1",
            warehouse_id="wh-paris-1",
            lines=(SkuQuantity(sku="TEA-02", quantity=4),),
        ),
    ]
    for event in events:
        await publish(
            bootstrap,
            names.of_event(type(event)),
            [traced(event, TRACE_ID if event is placed else uuid.uuid4().hex)],
        )
    # Bytes that are no event at all on the channel topic: the order service's to dead-letter.
    await publish(bootstrap, names.physical(CHANNEL), [(b"webshop:poison", POISON, [])])
    [poison] = [
        r for r in await read_to_end(bootstrap, names.physical(CHANNEL)) if r.value == POISON
    ]
    dead_letter_headers = [
        ("dlq_error_class", b"contracts.wire.InvalidEvent"),
        ("dlq_error_message", b"InvalidEvent: missing CloudEvents headers: ce_id"),
        ("dlq_attempts", b"1"),
        ("dlq_failed_at", NOW.isoformat().encode()),
        ("dlq_topic", names.physical(CHANNEL).encode()),
        ("dlq_partition", str(poison.partition).encode()),
        ("dlq_offset", str(poison.offset).encode()),
        ("dlq_consumer_group", b"order"),
    ]
    await publish(
        bootstrap,
        names.dead_letters("order"),
        [
            (b"webshop:poison", POISON, [("x-origin", b"channel"), *dead_letter_headers]),
            # Too large to copy: replay must read the value back from the source offset.
            (b"webshop:poison", None, [*dead_letter_headers, ("dlq_value_omitted_bytes", b"30")]),  # type: ignore[list-item]
            # ...and one whose original is no longer there to read back.
            (
                b"webshop:gone",
                None,  # type: ignore[list-item]
                [
                    *(h for h in dead_letter_headers if h[0] != "dlq_offset"),
                    ("dlq_offset", b"1000000"),
                    ("dlq_value_omitted_bytes", b"30"),
                ],
            ),
        ],
    )
    root, child = "a" * 16, "b" * 16
    await publish(
        bootstrap,
        names.physical(SPANS_TOPIC),
        [
            (TRACE_ID.encode(), span(root, None, "order", 0, 40, flowing), []),
            (TRACE_ID.encode(), span(child, root, "inventory", 50, 90, flowing), []),
            (TRACE_ID.encode(), span("c" * 16, child, "fulfilment", 95, 160, flowing), []),
            (TRACE_ID.encode(), b'{"trace_id": "short"}', []),
            # The operations view's own span: not part of the order's waterfall.
            (TRACE_ID.encode(), span("d" * 16, root, "operations", 10, 20, flowing), []),
        ],
    )
    return Scenario(names, flowing, stuck, poison.offset, letters=3)


@pytest.fixture(scope="module")
async def scenario(infrastructure: Infrastructure) -> Scenario:
    names = await fresh_namespace(infrastructure)
    return await publish_scenario(infrastructure, names)


@pytest.fixture(scope="module")
async def operations(
    infrastructure: Infrastructure, scenario: Scenario
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    database_url = await infrastructure.create_database("operations")
    async with running_service(_operations(infrastructure, scenario.names, database_url)) as client:
        await _wait_consumed(client, scenario)
        yield client, database_url


async def _wait_consumed(client: httpx.AsyncClient, scenario: Scenario) -> None:
    async def consumed() -> bool:
        view = (await client.get("/api/overview")).json()
        page = await client.get(f"/api/orders/{scenario.flowing}")
        return (
            sum(view["counts"].values()) == 2
            and view["counts"].get("return_requested") == 1
            and sum(view["dead_letters"].values()) == scenario.letters
            and view["notification_failure_count"] == 1
            and page.status_code == 200
            and len(page.json()["spans"]) == 3
            and len(view["low_stock"]) == 1
        )

    try:
        await eventually(consumed, timeout=60, interval=0.5)
    except AssertionError:
        view = (await client.get("/api/overview")).json()
        page = (await client.get(f"/api/orders/{scenario.flowing}")).json()
        raise AssertionError(
            f"not consumed: counts {view['counts']}, dead letters {view['dead_letters']}, "
            f"failures {view['notification_failure_count']}, low stock {view['low_stock']}, "
            f"trace {page.get('trace_ids')}, spans {page.get('spans')}"
        ) from None


async def test_projects_the_funnel_stuck_orders_stock_returns_and_failures(
    operations: tuple[httpx.AsyncClient, str], scenario: Scenario
) -> None:
    client, _ = operations
    view = (await client.get("/api/overview")).json()
    assert view["counts"] == {"return_requested": 1, "placed": 1}
    assert [row["order_id"] for row in view["stuck"]] == [scenario.stuck]
    assert view["stuck"][0]["status"] == "placed"
    assert [row["sku"] for row in view["low_stock"]] == ["MUG-01"], "TEA-02 was restocked after"
    assert view["returns_by_reason"] == {"damaged": 1}
    [rate] = view["return_rates"]
    assert (rate["sku"], rate["return_units"], rate["ordered_units"]) == ("MUG-01", 1, 4)
    [failure] = view["notification_failures"]
    assert failure["error"] == "550 mailbox unavailable"
    assert view["dead_letters"] == {"order": 3}
    charts = (await client.get("/api/charts")).json()
    assert charts["funnel"]["series"]["return_requested"][-1] == 1
    assert charts["funnel"]["series"]["placed"][-1] == 1
    # Bucketed by event time: the stuck order's and one low-stock event are older.
    assert sum(sum(values) for values in charts["rates"]["series"].values()) == 9
    page = (await client.get("/")).text
    assert scenario.stuck in page and "Order funnel now" in page


async def test_order_page_shows_the_cross_service_timeline_and_the_trace(
    operations: tuple[httpx.AsyncClient, str], scenario: Scenario
) -> None:
    client, _ = operations
    page = (await client.get(f"/api/orders/{scenario.flowing}")).json()
    assert [row["event_type"] for row in page["timeline"]][:2] == ["OrderSubmitted", "OrderPlaced"]
    assert {row["source"] for row in page["timeline"]} >= {
        "order",
        "fulfilment",
        "returns",
        "notification",
        "sales-channel adapters",
    }
    assert page["trace_id"] == TRACE_ID
    assert page["order"]["trace_id"] == TRACE_ID, "taken from the OrderPlaced record's traceparent"
    assert [(bar["service"], bar["depth"]) for bar in page["spans"]] == [
        ("order", 0),
        ("inventory", 1),
        ("fulfilment", 2),
    ]
    assert page["spans"][1]["offset_percent"] == pytest.approx(31.25)
    html = await client.get(f"/orders/{scenario.flowing}")
    assert html.status_code == 200 and "span-bar" in html.text and TRACE_ID in html.text
    assert (await client.get("/orders/ord-unknown")).status_code == 404
    assert (await client.get("/api/orders/ord-unknown")).status_code == 404


async def test_reads_consumer_lag_from_kafka_committed_offsets(
    operations: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = operations
    lag: dict[str, int] = {}

    async def caught_up() -> bool:
        rows = (await client.get("/api/overview")).json()["consumer_lag"]
        lag.update({row["consumer_group"]: row["lag"] for row in rows})
        return lag.get("operations") == 0 and lag.get("operations-raw") == 0

    await eventually(caught_up, timeout=30, interval=0.5)


async def test_a_rebuild_from_the_beginning_yields_the_same_projections(
    infrastructure: Infrastructure, operations: tuple[httpx.AsyncClient, str], scenario: Scenario
) -> None:
    _, first_url = operations
    rebuilt_url = await infrastructure.create_database("operations_rebuild")
    app = _operations(infrastructure, scenario.names, rebuilt_url, group="operations-rebuild")
    async with running_service(app) as client:
        await _wait_consumed(client, scenario)
        first, second = await _snapshot(first_url), await _snapshot(rebuilt_url)
    assert first == second
    assert first["ops_orders"] and first["ops_state_deltas"] and first["ops_spans"]


async def _snapshot(database_url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = {table.name: await db.snapshot(connection, table) for table in db.PROJECTIONS}
    finally:
        await engine.dispose()
    # A count that went up and down again leaves a zero row or none, by arrival order.
    tables["ops_state_counts"] = [row for row in tables["ops_state_counts"] if row["orders"]]
    tables["ops_state_deltas"] = [row for row in tables["ops_state_deltas"] if row["delta"]]
    # Replay bookkeeping and the row id are this database's, not facts from the topics.
    for row in tables["ops_dead_letters"]:
        for column in ("id", "replayed_at", "replays"):
            row.pop(column)
    tables["ops_dead_letters"].sort(
        key=lambda row: (row["dead_letter_partition"], row["dead_letter_offset"])
    )
    return tables


async def test_replay_publishes_the_original_record_back_without_dead_letter_headers(
    infrastructure: Infrastructure, operations: tuple[httpx.AsyncClient, str], scenario: Scenario
) -> None:
    client, _ = operations
    letters = (await client.get("/api/dead-letters", params={"group": "order"})).json()["items"]
    here = [letter for letter in letters if letter["source_offset"] == scenario.source_offset]
    omitted = next(letter for letter in here if letter["value_omitted_bytes"])
    copied = next(letter for letter in here if not letter["value_omitted_bytes"])
    assert copied["error_class"] == "contracts.wire.InvalidEvent"
    assert copied["source_offset"] == scenario.source_offset
    for letter in (copied, omitted):
        answer = await client.post(f"/dead-letters/{letter['id']}/replay")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/dead-letters?replayed={letter['id']}"
    records = await read_to_end(
        infrastructure.kafka_bootstrap_servers, scenario.names.physical(CHANNEL)
    )
    replayed = [r for r in records if r.value == POISON and r.offset > scenario.source_offset]
    assert len(replayed) == 2, "both, the omitted value read back from the source offset"
    for record in replayed:
        assert not [name for name, _ in record.headers if name.startswith("dlq_")]
        assert record.key == b"webshop:poison"
    assert ("x-origin", b"channel") in replayed[0].headers or ("x-origin", b"channel") in replayed[
        1
    ].headers
    page = (await client.get("/dead-letters")).text
    assert "replays: 1" in page


async def test_replay_of_an_unknown_dead_letter_is_refused(
    operations: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = operations
    answer = await client.post("/dead-letters/999999/replay")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/dead-letters?error=no%20dead%20letter")
    assert (
        "Not replayed: no dead letter 999999" in (await client.get(answer.headers["location"])).text
    )


async def test_replay_of_a_dead_letter_whose_original_is_gone_is_refused(
    operations: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = operations
    letters = (await client.get("/api/dead-letters", params={"group": "order"})).json()["items"]
    [gone] = [letter for letter in letters if letter["source_offset"] == 1_000_000]
    answer = await client.post(f"/dead-letters/{gone['id']}/replay")
    assert answer.status_code == 303
    page = (await client.get(answer.headers["location"])).text
    assert "the original is gone" in page


def test_thresholds_name_only_open_states() -> None:
    with pytest.raises(ValidationError, match="not open order states"):
        OperationsSettings(stuck_after_seconds={"cancelled": 10})
    with pytest.raises(ValidationError, match="positive"):
        OperationsSettings(stuck_after_seconds={"placed": 0})


def test_the_submission_is_a_channel_event() -> None:
    # The timeline finds the channel submission by its `channel:external_order_id` key.
    submitted = channel_order([("MUG-01", 1)], external_order_id="WS-x")
    assert isinstance(submitted, OrderSubmitted) and submitted.subject() == "webshop:WS-x"
