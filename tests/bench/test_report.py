"""The report on the terminal: the system's CPU apart from the harness's, and the
maximum rate with the shipped trace sample ratio and with every trace recorded."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bench import report

LATENCY = {"count": 90, "p50": 20.0, "p95": 40.0, "p99": 50.0, "max": 60.0}
SEARCH_STEP = {
    "offered": 300.0,
    "sustainable": True,
    "lag_bounded": True,
    "kept_up": True,
    "lag_growth_per_second": 0.0,
    "records_arriving_per_second": 4_000.0,
    "completed_per_second": 300.0,
    "system_cpu_ms_per_order": 4.2,
    "drained": True,
}


def _report(**changes: Any) -> dict[str, Any]:
    return {
        "run_id": "run1",
        "orders": 100,
        "completed": 100,
        "failed": 0,
        "incomplete": 0,
        "offered_orders_per_second": 300.0,
        "orders_per_second": 299.0,
        "lag_bounded": True,
        "kept_up": True,
        "trace_sample_ratio": 0.1,
        "latency_ms": {"placed_to_reserved": LATENCY, "whole_flow": None},
        "messages_per_order": {"all_topics": 20.5},
        "commits_per_order": {"all_services": 5.0, "by_service": {"order": 1.5}},
        "cpu_ms_per_order": {
            "system": {"order": 1.25, "kafka": 0.75, "postgres": 1.5},
            "system_total": 3.5,
            "harness": {"load_generator_and_observer": 0.3, "mail_sink": 0.45},
            "harness_total": 0.75,
            "not_measured": [],
        },
        "cpu_budget": {
            "cpus": 2,
            "cpu_limit_orders_per_second": 571.4,
            "throughput_to_cpu_limit": 0.523,
        },
        "peak_rss_mb": {"order": 120.0, "mail_sink": 30.0},
        **changes,
    }


def _rendered(values: dict[str, Any]) -> str:
    console = Console(record=True, width=240)
    report.render(values, console)
    return console.export_text()


def _row(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if label in line)


def test_the_system_cpu_per_order_is_shown_apart_from_the_harness() -> None:
    text = _rendered(_report())
    assert "3.50" in _row(text, "system CPU per order (ms)")
    assert "0.75" in _row(text, "harness CPU per order (ms)")
    assert "571.4" in _row(text, "CPU limit of the system (orders/s on 2 cores)")
    assert "0.45" in _row(text, "│ mail sink ")
    assert "0.30" in _row(text, "│ load generator and observer ")
    assert "120.0" in _row(text, "│ order ")


def test_processes_of_the_system_that_were_not_measured_are_named() -> None:
    cpu = {**_report()["cpu_ms_per_order"], "not_measured": ["kafka", "postgres"]}
    text = _rendered(_report(cpu_ms_per_order=cpu))
    assert "3.50" in _row(text, "system CPU per order (ms), without kafka and postgres")


def test_the_maximum_rate_is_shown_with_the_shipped_ratio_and_every_trace_recorded() -> None:
    search = {
        "orders_per_second": 300.0,
        "system_cpu_ms_per_order": 4.2,
        "steps": [SEARCH_STEP],
        "step_seconds": 30.0,
        "budget_exhausted": False,
    }
    traced = {**search, "sample_ratio": 1.0, "orders_per_second": 240.0}
    text = _rendered(_report(max_rate=search, tracing=traced))
    assert "0.10" in _row(text, "traces recorded (share of orders)")
    assert "300.0" in _row(text, "maximum sustainable rate (orders/s)")
    assert "240.0" in _row(text, "maximum sustainable rate, 100% traced (orders/s)")
    assert "Maximum rate search, 100% traced (30 s steps)" in text
    assert "4.20" in text
