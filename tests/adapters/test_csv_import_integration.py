"""The CSV importer as a user runs it (a subprocess), against the real broker and the
order service (in-process, real PostgreSQL): good orders placed, bad rows written out
with their reasons, and a second run doubling nothing; orders with discounts, taxes and
shipping lines published with every amount."""

from __future__ import annotations

import asyncio
import csv
import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from adapters.marketplace_feed import parse_feed
from contracts.events.channel import OrderSubmitted
from contracts.wire import decode, header_map
from tests.adapters.feeds import NOW, TAXED_EXAMPLE, assert_amounts_add_up, row
from tests.adapters.order_scene import INBOUND, running_order_service
from tests.infrastructure import Infrastructure
from tests.kafka_tools import read_to_end

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).parents[2]


async def run_importer(bootstrap: str, namespace: str, feed: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.csv_import",
        str(feed),
        "--channel",
        "marketplace",
        "--bootstrap",
        bootstrap,
        "--namespace",
        namespace,
        cwd=REPOSITORY,
        env=os.environ | {"COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_imports_good_orders_rejects_bad_rows_and_a_second_run_doubles_nothing(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    good, single, bad_row, bad_currency = (f"IMP-{run}-{n}" for n in range(1, 5))
    rows = [
        row(external_order_id=good, sku="SKU-A", quantity="2", unit_price="19.99"),
        row(external_order_id=single, sku="SKU-B", quantity="1", unit_price="5.00"),
        row(external_order_id=good, sku="SKU-B", quantity="1", unit_price="5.00"),
        row(external_order_id=bad_row, sku="SKU-A", quantity="0"),
        row(external_order_id=bad_row, sku="SKU-B"),
        row(external_order_id=bad_currency, currency="XYZ"),
    ]
    feed = tmp_path / "feed.csv"
    with feed.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    async with running_order_service(infrastructure, ["SKU-A", "SKU-B"]) as scene:
        exit_code, output = await run_importer(scene.bootstrap, scene.names.namespace, feed)

        assert exit_code == 1, output
        assert "accepted │      2 │    3" in output
        assert "rejected │      2 │    3" in output
        placed = await scene.placed("marketplace", good)
        assert placed["status"] == "placed"
        assert placed["total"] == {"amount_minor": 3998 + 500 + 490, "currency": "EUR"}
        assert (await scene.placed("marketplace", single))["status"] == "placed"
        rejected = list(csv.DictReader(feed.with_name("feed.rejected.csv").open()))
        assert [(item["external_order_id"], item["reason"]) for item in rejected] == [
            (bad_row, "quantity: '0' is not a positive whole number"),
            (bad_row, f"order {bad_row} not imported: see line 5"),
            (bad_currency, "currency: 'XYZ' is not an ISO 4217 currency code"),
        ]
        for external_id in (bad_row, bad_currency):
            assert await scene.inbound_records(f"marketplace:{external_id}") == []

        again, output = await run_importer(scene.bootstrap, scene.names.namespace, feed)

        assert again == 1, output
        records = await scene.inbound_records(f"marketplace:{good}")
        records += await scene.inbound_records(f"marketplace:{single}")
        assert len(records) == 4, "the second run published every good order again"
        await scene.wait_consumed(records)
        assert len(await scene.orders("marketplace", good)) == 1
        assert len(await scene.orders("marketplace", single)) == 1


async def test_the_taxed_example_is_published_with_its_discounts_taxes_and_totals_and_placed(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    feed = Path(shutil.copy(TAXED_EXAMPLE, tmp_path / "taxed.csv"))
    skus = ["LAMP-ARC", "MUG-STONE", "VASE-GLASS", "CHAIR-OAK", "THROW-LINEN", "RUG-WOOL"]

    async with running_order_service(infrastructure, skus) as scene:
        exit_code, output = await run_importer(scene.bootstrap, scene.names.namespace, feed)

        assert exit_code == 0, output
        records = await read_to_end(scene.bootstrap, scene.names.physical(INBOUND))
        published: dict[str, OrderSubmitted] = {}
        for record in records:
            event = decode(header_map(record.headers), record.value)
            assert isinstance(event, OrderSubmitted)
            assert record.key == event.partition_key().encode()
            published[event.external_order_id] = event
        totals = {
            external_order_id: (
                order.subtotal.amount_minor,
                order.total_discounts.amount_minor if order.total_discounts else None,
                order.total_tax.amount_minor if order.total_tax else None,
                order.total.amount_minor,
            )
            for external_order_id, order in published.items()
        }
        assert totals == {
            "MP-20001": (20700, 2000, 3282, 19690),
            "MP-20002": (41500, 4500, 2864, 42364),
            "MP-20003": (88000, 8000, 0, 86000),
            "MP-20004": (23900, 0, 4066, 24399),
        }
        lamp = published["MP-20001"].lines[0]
        assert [(a.discount_id, a.amount.amount_minor) for a in lamp.discount_allocations] == [
            ("line-1", 1000),
            ("order", 604),
        ]
        assert [tax.amount.amount_minor for tax in lamp.tax_lines] == [1883]
        # Every field as the feed gave it, not only the amounts.
        with feed.open(newline="", encoding="utf-8") as stream:
            parsed = parse_feed(stream, channel="marketplace", submitted_at=NOW)
        ignored = {"event_id", "occurred_at", "submitted_at"}
        for item in parsed.orders:
            event = published[item.order.external_order_id]
            assert event.model_dump(exclude=ignored) == item.order.model_dump(exclude=ignored)
            assert_amounts_add_up(event)
        # The order service takes each with the marketplace's own total.
        for external_order_id, order in published.items():
            placed = await scene.placed("marketplace", external_order_id)
            assert placed["status"] == "placed", placed
            assert placed["total"] == order.total.model_dump(), placed
