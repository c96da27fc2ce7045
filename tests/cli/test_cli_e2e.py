"""`oms` against the running system: the five services as processes on the real Kafka and
PostgreSQL, driven through the CLI as an operator would (CliRunner on the app, and the
installed `oms` script for the real entry point)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner, Result

from cli.main import app
from tests.e2e.flow import Flow, channel_order, seed_catalogue, unique
from tests.e2e.system import free_port, running_system
from tests.infrastructure import REPO, Infrastructure
from tests.kafka_tools import create_topics, eventually, read_to_end

pytestmark = pytest.mark.e2e

CHANNEL_TOPIC = "oms.channel.orders.v1"
OMS = REPO / ".venv" / "bin" / "oms"


@pytest.fixture(scope="module")
async def flow(infrastructure: Infrastructure) -> AsyncIterator[Flow]:
    async with running_system(
        infrastructure,
        REPO / "reports" / "e2e-logs" / "cli",
    ) as system:
        yield Flow(system, infrastructure)


def system_options(flow: Flow) -> list[str]:
    urls = flow.system.urls
    return [
        *(option for service, url in urls.items() for option in (f"--{service}-url", url)),
        "--kafka",
        flow.infrastructure.kafka_bootstrap_servers,
        "--namespace",
        flow.system.names.namespace,
    ]


async def oms(flow: Flow, *arguments: str) -> Result:
    """Runs `oms <system options> <arguments>` in a worker thread: the dead-letter
    commands run their own event loop, which cannot nest in the test's."""
    command_line = [*system_options(flow), *arguments]
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(app, command_line, env={"COLUMNS": "200"})
    )


async def oms_json(flow: Flow, *arguments: str, exit_code: int = 0) -> Any:
    result = await oms(flow, *arguments, "--json")
    assert result.exit_code == exit_code, f"{arguments}: {result.output}"
    return json.loads(result.stdout)


async def confirmed_order(flow: Flow, units: int = 2) -> tuple[str, str]:
    sku = unique("sku-cli")
    await seed_catalogue(flow.system, {sku: {"wh-paris": 10}})
    order_id = await flow.submit(channel_order([(sku, units)]))
    await flow.wait_status(order_id, "confirmed")
    return order_id, sku


async def test_lists_and_shows_orders(flow: Flow) -> None:
    order_id, sku = await confirmed_order(flow)

    listed = await oms_json(flow, "orders", "list", "--channel", "webshop", "--limit", "500")
    assert order_id in [item["order_id"] for item in listed["items"]]
    shown = await oms_json(flow, "orders", "show", order_id)
    assert shown["status"] == "confirmed"
    assert [(line["sku"], line["quantity"]) for line in shown["lines"]] == [(sku, 2)]

    assert shown["timeline"], "the cross-service timeline"
    table = await oms(flow, "orders", "show", order_id)
    assert table.exit_code == 0, table.output
    for section in (order_id, "Status history", "Timeline", "StockReserved"):
        assert section in table.stdout, section

    [found] = (await oms_json(flow, "orders", "list", "--external-id", shown["external_order_id"]))[
        "items"
    ]
    assert found["order_id"] == order_id

    missing = await oms(flow, "orders", "show", "ord_does_not_exist")
    assert missing.exit_code == 3
    assert "order_not_found" in missing.stderr


async def test_pages_through_orders_with_the_cursor(flow: Flow) -> None:
    for _ in range(2):
        await confirmed_order(flow)
    first = await oms_json(flow, "orders", "list", "--limit", "1")
    assert first["next_cursor"], "more than one order exists"
    second = await oms_json(
        flow, "orders", "list", "--limit", "1", "--cursor", first["next_cursor"]
    )
    assert second["items"][0]["order_id"] != first["items"][0]["order_id"]
    table = await oms(flow, "orders", "list", "--limit", "1")
    assert f"--cursor {first['next_cursor']}" in table.stderr
    bad = await oms_json(flow, "orders", "list", "--cursor", "not-a-cursor", exit_code=1)
    assert bad["error"]["status"] == 422


async def test_cancels_once_and_refuses_the_second_cancel(flow: Flow) -> None:
    order_id, _sku = await confirmed_order(flow)
    cancel = ["orders", "cancel", order_id, "--reason", "customer_request", "--by", "agent:cli"]

    cancelled = await oms_json(flow, *cancel, "--note", "asked by phone")
    assert cancelled["status"] == "cancelled"
    refused = await oms_json(flow, *cancel, exit_code=1)
    assert refused["error"]["status"] == 409
    assert refused["error"]["code"]


async def test_changes_the_address_and_refuses_an_invalid_one(flow: Flow) -> None:
    order_id, _sku = await confirmed_order(flow)
    address = ["--name", "Ada Lovelace", "--line1", "1 quai Branly", "--city", "Paris"]
    address += ["--postal-code", "75007", "--by", "agent:cli"]

    changed = await oms_json(
        flow, "orders", "change-address", order_id, *address, "--country", "FR"
    )
    assert changed["shipping_address"]["line1"] == "1 quai Branly"
    invalid = await oms_json(
        flow, "orders", "change-address", order_id, *address, "--country", "XX", exit_code=1
    )
    assert invalid["error"]["status"] == 422
    assert "country" in invalid["error"]["message"]


async def test_shows_receives_and_adjusts_stock(flow: Flow) -> None:
    sku = unique("sku-stock")
    await seed_catalogue(flow.system, {sku: {"wh-lyon": 4}})
    reference = unique("PO")

    received = await oms_json(
        flow, "stock", "receive", sku, "wh-lyon", "6", "--reference", reference
    )
    assert (received["on_hand"], received["duplicate"]) == (10, False)
    again = await oms_json(flow, "stock", "receive", sku, "wh-lyon", "6", "--reference", reference)
    assert (again["on_hand"], again["duplicate"]) == (10, True)
    adjusted = await oms_json(flow, "stock", "adjust", sku, "wh-lyon", "-3", "--reason", "broken")
    assert adjusted["on_hand"] == 7
    below_zero = await oms_json(
        flow, "stock", "adjust", sku, "wh-lyon", "-100", "--reason", "typo", exit_code=1
    )
    assert below_zero["error"]["status"] == 409

    shown = await oms_json(flow, "stock", "show", sku)
    assert [(w["warehouse_id"], w["on_hand"]) for w in shown["warehouses"]] == [("wh-lyon", 7)]
    everything = await oms_json(flow, "stock", "show", "--limit", "1000")
    assert (sku, "wh-lyon", 7) in [
        (r["sku"], r["warehouse_id"], r["on_hand"]) for r in everything["items"]
    ]
    assert (await oms(flow, "stock", "show", "sku-nowhere")).exit_code == 3
    unknown_warehouse = await oms(
        flow, "stock", "receive", sku, "wh-mars", "1", "--reference", "r1"
    )
    assert unknown_warehouse.exit_code == 3


async def test_ships_delivers_and_takes_a_return_back(flow: Flow) -> None:
    order_id, sku = await confirmed_order(flow, units=2)
    await flow.shipments(order_id, 1)

    [shipment] = (await oms_json(flow, "shipments", "list", order_id))["items"]
    shipment_id = shipment["shipment_id"]
    assert (await oms_json(flow, "shipments", "pick", shipment_id))["status"] == "picked"
    packed = await oms_json(flow, "shipments", "pack", shipment_id, "--weight", "1200")
    assert packed["status"] == "packed"
    shipped = await oms_json(flow, "shipments", "ship", shipment_id)
    assert shipped["status"] == "shipped"
    assert (await oms(flow, "shipments", "ship", shipment_id)).exit_code == 1
    delivered = await oms_json(flow, "shipments", "deliver", shipped["tracking_number"])
    assert delivered["status"] == "delivered"
    assert (await oms(flow, "shipments", "deliver", "TRK-NOBODY")).exit_code == 3
    await flow.wait_status(order_id, "delivered")

    rma = await request_return(flow, order_id, f"{sku}:1:damaged")
    assert rma["status"] == "requested"
    return_id = rma["return_id"]

    approved = await oms_json(flow, "returns", "approve", return_id)
    assert approved["status"] == "approved"
    received = await oms_json(flow, "returns", "receive", return_id, "--line", f"{sku}:1:1")
    assert received["refund"] is not None
    shown = await oms_json(flow, "returns", "show", return_id)
    assert shown["received"][0]["restockable_quantity"] == 1
    assert (await oms(flow, "returns", "approve", return_id)).exit_code == 1
    assert (await oms(flow, "returns", "show", "rma_nothing")).exit_code == 3
    await flow.wait_status(order_id, "partially_returned")


async def request_return(flow: Flow, order_id: str, line: str) -> dict[str, Any]:
    """The order service saw the delivery; the returns service may hear of it a moment
    later (it then rejects the request as not delivered, and we ask again)."""
    requested: dict[str, Any] = {}

    async def accepted() -> bool:
        result = await oms(flow, "returns", "request", order_id, "--line", line, "--json")
        document = json.loads(result.stdout)
        if result.exit_code == 0:
            requested.update(document)
            return True
        codes = [r["code"] for r in document["error"]["return"]["rejection_reasons"]]
        assert (result.exit_code, codes) == (1, ["not_delivered"]), result.output
        return False

    await eventually(accepted, timeout=20, interval=0.5)
    return requested


async def dead_letters(flow: Flow, group: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await oms_json(flow, "dead-letters", "list", "--group", group, "--limit", "1000")
    )["items"]
    return items


async def test_lists_shows_and_replays_a_poison_record(flow: Flow) -> None:
    channel_topic = flow.system.names.physical(CHANNEL_TOPIC)
    probe = uuid.uuid4().hex.encode()
    poison = b"\x00\xffnot json at all \x1b[31m"
    key = f"webshop:{unique('poison')}".encode()
    await _publish(flow, channel_topic, key, poison, [("x-probe", probe)])

    letters: list[dict[str, Any]] = []

    async def dead_lettered(count: int) -> bool:
        letters[:] = [
            item
            for item in await dead_letters(flow, "order")
            if item["source"]["topic"] == channel_topic and item["key"] == key.decode()
        ]
        return len(letters) >= count

    await eventually(lambda: dead_lettered(1), timeout=30, interval=0.5)
    [first] = letters
    assert first["consumer_group"] == "order"
    assert "InvalidEvent" in first["error_class"]

    shown = await oms_json(flow, "dead-letters", "show", first["id"])
    assert shown["value_format"] == "bytes"
    assert shown["value"] == "\\x00\\xffnot json at all \\x1b[31m"
    assert {"name": "x-probe", "value": probe.decode()} in shown["headers"]
    human = await oms(flow, "dead-letters", "show", first["id"])
    assert human.exit_code == 0 and "not JSON" in human.stdout and "\x1b" not in human.stdout

    replayed = await oms_json(flow, "dead-letters", "replay", first["id"])
    [result] = replayed["results"]
    assert (replayed["replayed"], result["topic"]) == (1, channel_topic)
    # Still poison: dead-lettered again, from the replayed copy's offset.
    await eventually(lambda: dead_lettered(2), timeout=30, interval=0.5)
    assert letters[-1]["source"]["offset"] == result["offset"]
    copy = [
        record
        for record in await read_to_end(flow.infrastructure.kafka_bootstrap_servers, channel_topic)
        if record.offset == result["offset"] and record.partition == result["partition"]
    ]
    assert [(r.key, r.value, list(r.headers)) for r in copy] == [
        (key, poison, [("x-probe", probe)])
    ]

    everything = len(await dead_letters(flow, "order"))
    assert everything == 2, "this module's only poison: the record and its replayed copy"
    replay_all = await oms_json(
        flow, "dead-letters", "replay", "--all", "--group", "order", "--yes"
    )
    assert replay_all["replayed"] == everything
    await eventually(lambda: dead_lettered(4), timeout=30, interval=0.5)
    assert len(letters) == 4

    assert (await oms(flow, "dead-letters", "show", "order:0:999999")).exit_code == 3
    not_asked = await oms(flow, "dead-letters", "replay", "--all", "--group", "order")
    assert not_asked.exit_code == 1, "without --yes and without an answer nothing is replayed"

    # The consumer kept going: a valid order after the poison is processed, and no
    # further dead letter appeared.
    await confirmed_order(flow)
    assert len(await dead_letters(flow, "order")) == everything + 2


async def test_replays_a_dead_letter_whose_value_was_too_large_to_copy(flow: Flow) -> None:
    bootstrap = flow.infrastructure.kafka_bootstrap_servers
    source = f"{flow.system.names.namespace}.test.large.{uuid.uuid4().hex[:6]}"
    await create_topics(bootstrap, source, partitions=1)
    original = json.dumps({"big": "x" * 1000}).encode()
    source_offset = await _publish(flow, source, b"k1", original, [("ce_id", b"id-1")])
    dead_letter_topic = flow.system.names.dead_letters("notification")
    omitted = [
        ("ce_id", b"id-1"),
        ("dlq_error_class", b"aiokafka.errors.MessageSizeTooLargeError"),
        ("dlq_error_message", b"too large"),
        ("dlq_topic", source.encode()),
        ("dlq_partition", b"0"),
        ("dlq_consumer_group", b"notification"),
        ("dlq_value_omitted_bytes", str(len(original)).encode()),
    ]
    await _publish(
        flow,
        dead_letter_topic,
        b"k1",
        None,
        [*omitted, ("dlq_offset", str(source_offset).encode())],
    )
    await _publish(flow, dead_letter_topic, b"k2", None, [*omitted, ("dlq_offset", b"999")])
    letters = {item["key"]: item for item in await dead_letters(flow, "notification")}

    shown = await oms_json(flow, "dead-letters", "show", letters["k1"]["id"])
    assert (shown["value_format"], shown["value_omitted_bytes"]) == ("omitted", len(original))
    replayed = await oms_json(flow, "dead-letters", "replay", letters["k1"]["id"])
    assert replayed["results"][0]["offset"] == source_offset + 1
    records = await read_to_end(bootstrap, source)
    assert [(r.key, r.value, list(r.headers)) for r in records] == [
        (b"k1", original, [("ce_id", b"id-1")]),
        (b"k1", original, [("ce_id", b"id-1")]),
    ]

    gone = await oms_json(flow, "dead-letters", "replay", letters["k2"]["id"], exit_code=3)
    assert "the original is gone" in gone["error"]["message"]


async def test_the_installed_script_and_a_closed_port(flow: Flow) -> None:
    order_id, _sku = await confirmed_order(flow)
    shown = await asyncio.to_thread(
        subprocess.run,
        [str(OMS), *system_options(flow), "orders", "show", order_id, "--json"],
        capture_output=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["order_id"] == order_id

    health = await oms_json(flow, "status")
    assert all(service["healthy"] for service in health["services"].values())

    closed = await asyncio.to_thread(
        subprocess.run,
        [str(OMS), "--order-url", f"http://127.0.0.1:{free_port()}", "orders", "list"],
        capture_output=True,
        timeout=60,
    )
    assert closed.returncode == 4
    assert closed.stdout == b""
    assert b"cannot reach the order service" in closed.stderr


async def _publish(
    flow: Flow, topic: str, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]]
) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=flow.infrastructure.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()
    offset: int = metadata.offset
    return offset
