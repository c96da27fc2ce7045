"""The dashboard in headless Chromium (Debian's package, driven by Playwright) against the
running system: the five services and the operations view as OS processes in one topic
namespace. Screenshots go to reports/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.e2e.flow import Flow, channel_order, seed_catalogue, unique
from tests.e2e.system import _stop, _wait_healthy, free_port, running_system
from tests.infrastructure import REPO, Infrastructure
from tests.kafka_tools import eventually, publish

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "reports" / "screenshots"
LOGS = REPO / "reports" / "browser-logs"
DOCS_SCREENSHOT = REPO / "docs" / "dashboard.png"
STATE_TIMEOUT_MS = 45_000


@dataclass
class Dashboard:
    flow: Flow
    url: str
    browser: Browser

    async def page(self, path: str = "/") -> Page:
        page = await self.browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(self.url + path)
        return page


@pytest.fixture(scope="module")
async def dashboard(infrastructure: Infrastructure) -> AsyncIterator[Dashboard]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with running_system(
        infrastructure,
        LOGS,
    ) as system:
        database_url = await infrastructure.create_database("browser_operations")
        port = free_port()
        system.urls["operations"] = f"http://127.0.0.1:{port}"
        environment = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap_servers,
            "OMS_TOPIC_NAMESPACE": system.names.namespace,
            "OPERATIONS_DATABASE_URL": database_url,
            "OMS_HTTP_PORT": str(port),
            "OMS_LIVE_INTERVAL_SECONDS": "0.5",
            "OMS_LAG_INTERVAL_SECONDS": "1",
        }
        with (LOGS / "operations.log").open("ab") as log:
            system.processes["operations"] = subprocess.Popen(
                [sys.executable, "-m", "services.operations"],
                cwd=REPO,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            await _wait_healthy(system, "operations")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    yield Dashboard(
                        Flow(system, infrastructure), system.urls["operations"], browser
                    )
                finally:
                    await browser.close()
        finally:
            _stop(system.processes["operations"])


async def wait_for_state(page: Page, order_id: str, status: str) -> None:
    badge = page.locator(f'#recent tr[data-order-id="{order_id}"] [data-status]')
    await expect(badge).to_have_attribute("data-status", status, timeout=STATE_TIMEOUT_MS)


async def test_the_overview_shows_a_submitted_order_moving_through_its_states_live(
    dashboard: Dashboard,
) -> None:
    flow = dashboard.flow
    sku = unique("sku-lamp")
    await seed_catalogue(flow.system, {sku: {"wh-paris": 10}})
    page = await dashboard.page("/")
    # Set in this document only: a reload would lose it.
    await page.evaluate("window.__sameDocument = 'yes'")

    order_id = await flow.submit(channel_order([(sku, 1)]))
    await wait_for_state(page, order_id, "confirmed")
    await page.screenshot(path=str(SCREENSHOTS / "overview-confirmed.png"), full_page=True)
    [shipment] = await flow.shipments(order_id, 1)
    shipped = await flow.ship(shipment["shipment_id"])
    await wait_for_state(page, order_id, "shipped")
    await flow.deliver(shipped["tracking_number"])
    await wait_for_state(page, order_id, "delivered")
    await page.screenshot(path=str(SCREENSHOTS / "overview-delivered.png"), full_page=True)

    assert await page.evaluate("window.__sameDocument") == "yes", "updated without a reload"
    # The funnel counts the order as delivered (panels swap one after the other: poll).
    funnel = page.locator('#funnel [data-stage="delivered"] .n')
    await expect(funnel).to_have_text(re.compile(r"^\s*[1-9][\d,]*\s*$"), timeout=10_000)
    assert await page.locator("body").get_attribute("data-charts-updated"), "charts were fed"
    await expect(page.locator('#lag tr[data-group="order"]')).to_be_visible(timeout=20_000)
    await page.close()


async def test_the_order_page_shows_the_cross_service_timeline_with_its_trace(
    dashboard: Dashboard,
) -> None:
    flow = dashboard.flow
    sku = unique("sku-mug")
    await seed_catalogue(flow.system, {sku: {"wh-paris": 5}})
    order_id = await flow.submit(channel_order([(sku, 2)]))
    [shipment] = await flow.shipments(order_id, 1)
    await flow.ship(shipment["shipment_id"])
    await flow.wait_status(order_id, "shipped")

    page = await dashboard.page(f"/orders/{order_id}")
    for event_type in (
        "OrderSubmitted",
        "OrderPlaced",
        "StockReserved",
        "OrderConfirmed",
        "ShipmentCreated",
        "Shipped",
        "NotificationSent",
    ):
        await expect(
            page.locator(f'#timeline tr[data-event-type="{event_type}"]').first
        ).to_be_visible(timeout=STATE_TIMEOUT_MS)
    await expect(page.locator("#order-status")).to_have_attribute("data-status", "shipped")
    sources = set(await page.locator("#timeline .svc").all_inner_texts())
    assert {"order", "inventory", "fulfilment", "notification"} <= sources
    trace_id = (await page.locator("#trace-id").inner_text()).strip()
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), trace_id
    await page.screenshot(path=str(SCREENSHOTS / "order-page.png"), full_page=True)
    await page.close()


async def test_a_dead_letter_is_replayed_from_the_page_and_lands_in_the_dead_letters_again(
    dashboard: Dashboard,
) -> None:
    flow = dashboard.flow
    system = flow.system
    poison = f"poison {unique('bytes')} \xff".encode("latin-1")
    await publish(
        flow.infrastructure.kafka_bootstrap_servers,
        system.names.physical("oms.channel.orders.v1"),
        [(b"webshop:poison", poison, [])],
    )
    count = 0

    async def order_letters() -> int:
        async with httpx.AsyncClient(base_url=dashboard.url) as client:
            answer = await client.get("/api/dead-letters", params={"group": "order"})
        return int(answer.json()["counts"].get("order", 0))

    async def arrived() -> bool:
        nonlocal count
        count = await order_letters()
        return count >= 1

    await eventually(arrived, timeout=60, interval=0.5)
    page = await dashboard.page("/dead-letters?group=order")
    row = page.locator("tr[data-letter-id]").filter(has_text="poison").first
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("InvalidEvent")
    before = count
    await page.screenshot(path=str(SCREENSHOTS / "dead-letters-before-replay.png"), full_page=True)
    await row.get_by_role("button", name="Replay").click()
    await expect(page.locator("#flash")).to_contain_text("replayed to its source topic")

    async def dead_lettered_again() -> bool:
        return await order_letters() == before + 1

    await eventually(dead_lettered_again, timeout=60, interval=0.5)
    await page.reload()
    await expect(page.locator('.groups .count[data-group="order"]')).to_have_text(str(before + 1))
    await expect(page.locator("tr[data-letter-id]").filter(has_text="replays: 1")).to_have_count(1)
    await page.screenshot(path=str(SCREENSHOTS / "dead-letters-after-replay.png"), full_page=True)
    await page.close()


async def test_the_overview_with_demo_like_traffic(dashboard: Dashboard) -> None:
    """A few dozen orders with every outcome, then a full-page screenshot (copied to
    docs/dashboard.png when OMS_UPDATE_DOCS_SCREENSHOT=1)."""
    flow = dashboard.flow
    system = flow.system
    skus = [unique(name) for name in ("sku-lamp", "sku-mug", "sku-chair", "sku-desk")]
    await seed_catalogue(system, {sku: {"wh-paris": 12, "wh-berlin": 6} for sku in skus})
    async with system.client("inventory") as inventory:
        for sku in skus[:2]:
            answer = await inventory.put(f"/stock/{sku}/threshold", json={"threshold": 14})
            assert answer.status_code == 200, answer.text
    order_ids = [await flow.submit(channel_order([(skus[n % 4], 1 + n % 2)])) for n in range(12)]
    # A SKU the catalogue does not know: the order service rejects it.
    await flow.submit(channel_order([(unique("sku-unknown"), 1)]))
    for order_id in order_ids[:8]:
        [shipment] = await flow.shipments(order_id, 1)
        shipped = await flow.ship(shipment["shipment_id"])
        if order_ids.index(order_id) < 5:
            await flow.deliver(shipped["tracking_number"])
    for order_id in order_ids[:3]:
        await flow.wait_status(order_id, "delivered")
        async with system.client("returns") as returns:
            view = await flow.order(order_id)
            line = view["lines"][0]
            answer = await returns.post(
                "/returns",
                json={
                    "order_id": order_id,
                    "lines": [
                        {
                            "sku": line["sku"],
                            "quantity": 1,
                            "reason_code": ["damaged", "wrong_item", "no_longer_needed"][
                                order_ids.index(order_id)
                            ],
                        }
                    ],
                },
            )
            assert answer.status_code == 201, answer.text
    async with system.client("order") as order:
        answer = await order.post(
            f"/orders/{order_ids[11]}/cancel",
            json={"reason": "customer_request", "cancelled_by": "cs:agent"},
        )
        assert answer.status_code == 200, answer.text

    page = await dashboard.page("/")
    await expect(page.locator('#funnel [data-stage="return_requested"] .n')).to_have_text(
        re.compile(r"[1-9]"), timeout=STATE_TIMEOUT_MS
    )
    await expect(page.locator("#lowstock td").first).to_be_visible(timeout=STATE_TIMEOUT_MS)
    await page.wait_for_timeout(1500)
    path = SCREENSHOTS / "dashboard.png"
    await page.screenshot(path=str(path), full_page=True)
    if os.environ.get("OMS_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOT)
    await page.close()
