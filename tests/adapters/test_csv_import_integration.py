"""The CSV importer as a user runs it (a subprocess), against the real broker and the
order service (in-process, real PostgreSQL): good orders placed, bad rows written out
with their reasons, and a second run doubling nothing."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.adapters.feeds import row
from tests.adapters.order_scene import OrderScene, running_order_service
from tests.infrastructure import Infrastructure

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).parents[2]


async def run_importer(scene: OrderScene, feed: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.csv_import",
        str(feed),
        "--channel",
        "marketplace",
        "--bootstrap",
        scene.bootstrap,
        "--namespace",
        scene.names.namespace,
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
        exit_code, output = await run_importer(scene, feed)

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

        again, output = await run_importer(scene, feed)

        assert again == 1, output
        records = await scene.inbound_records(f"marketplace:{good}")
        records += await scene.inbound_records(f"marketplace:{single}")
        assert len(records) == 4, "the second run published every good order again"
        await scene.wait_consumed(records)
        assert len(await scene.orders("marketplace", good)) == 1
        assert len(await scene.orders("marketplace", single)) == 1
