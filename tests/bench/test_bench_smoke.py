"""`python -m bench --smoke` end to end: a few hundred orders through the five services on
the test session's Kafka and PostgreSQL; every order must complete its flow and the
report must carry every figure the benchmark promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import SMOKE_ORDERS
from tests.infrastructure import REPO, Infrastructure

pytestmark = pytest.mark.e2e

HOPS = (
    "submitted_to_placed",
    "placed_to_reserved",
    "reserved_to_shipped",
    "shipped_to_delivered",
    "delivered_to_notified",
    "whole_flow",
)


@pytest.mark.timeout(900)
def test_smoke_run_completes_every_order_and_reports_every_figure(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    report_path = tmp_path / "bench.json"
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--bootstrap",
            infrastructure.kafka_bootstrap_servers,
            "--postgres-url",
            infrastructure.postgres_admin_url,
            "--report",
            str(report_path),
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-4000:]
    report = json.loads(report_path.read_text())

    assert report["orders"] == SMOKE_ORDERS
    assert report["completed"] == SMOKE_ORDERS, report
    assert report["failed"] == 0
    assert report["orders_per_second"] > 0
    assert isinstance(report["kept_up"], bool)
    for hop in HOPS:
        assert set(report["latency_ms"][hop]) >= {"p50", "p95", "p99"}, hop
    services = {"order", "inventory", "fulfilment", "returns", "notification"}
    cpu = report["cpu_ms_per_order"]
    # Kafka and PostgreSQL are the test session's: the benchmark cannot see their CPU.
    assert set(cpu["system"]) == services
    assert cpu["not_measured"] == ["kafka", "postgres"]
    assert set(cpu["harness"]) == {"load_generator_and_observer", "mail_sink"}
    assert cpu["system_total"] > 0
    assert cpu["harness"]["mail_sink"] > 0
    assert report["trace_sample_ratio"] > 0
    assert set(report["peak_rss_mb"]) >= services
    assert set(report["baseline"]) == {"kafka", "postgres", "hop_latency_ms"}
    assert report["baseline"]["kafka"]["messages_per_second"] > 0
    assert report["baseline"]["postgres"]["commits_per_second"] > 0
    assert report["ratios"]["limit_orders_per_second"] > 0
    assert report["ratios"]["throughput_to_limit"] > 0
    assert report["cpu_budget"]["cpu_limit_orders_per_second"] > 0
    assert report["messages_per_order"]["mean_record_bytes"] > 0
    # Three e-mails per order: placed, shipped, delivered.
    assert report["mail_received"] >= 3 * SMOKE_ORDERS
