"""The benchmark's report: written as JSON, summarised in tables on the terminal."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def write(report: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def render(report: Mapping[str, Any], console: Console) -> None:
    console.print(_headline(report))
    console.print(_latency_table(report["latency_ms"], "Latency of the main run (ms)"))
    console.print(_service_table(report))
    if "baseline" in report:
        console.print(_baseline_table(report))
    if "max_rate" in report:
        console.print(_search_table(report["max_rate"], "Maximum rate search"))
    if "tracing" in report:
        tracing = report["tracing"]
        console.print(
            _search_table(tracing, f"Maximum rate search, {tracing['sample_ratio']:.0%} traced")
        )
    if "latency_curve" in report:
        console.print(_curve_table(report["latency_curve"]))
    if "lag_recovery" in report:
        console.print(_recovery_table(report["lag_recovery"]))
    if "scaling" in report:
        console.print(_scaling_table(report["scaling"]))


def _headline(report: Mapping[str, Any]) -> Table:
    table = Table(title=f"Benchmark run {report['run_id']}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("orders offered (main run)", _number(report["orders"]))
    table.add_row(
        "completed / failed / unfinished",
        f"{report['completed']:,} / {report['failed']:,} / {report['incomplete']:,}",
    )
    table.add_row("offered rate (orders/s)", _number(report["offered_orders_per_second"]))
    table.add_row("sustained throughput (orders/s)", _number(report["orders_per_second"]))
    table.add_row("lag bounded during the main run", _number(report["lag_bounded"]))
    table.add_row("orders completed as fast as offered", _number(report["kept_up"]))
    table.add_row("traces recorded (share of orders)", _number(report["trace_sample_ratio"], 2))
    maximum = report.get("max_rate", {}).get("orders_per_second")
    table.add_row("maximum sustainable rate (orders/s)", _number(maximum))
    tracing = report.get("tracing")
    if tracing:
        table.add_row(
            f"maximum sustainable rate, {tracing['sample_ratio']:.0%} traced (orders/s)",
            _number(tracing["orders_per_second"]),
        )
    table.add_row(
        "messages per order (all topics)", _number(report["messages_per_order"]["all_topics"], 2)
    )
    table.add_row(
        "commits per order (all services)", _number(report["commits_per_order"]["all_services"], 2)
    )
    table.add_row("busiest service", str(report.get("busiest_service", "—")))
    cpu, budget = report["cpu_ms_per_order"], report["cpu_budget"]
    # The system is the services, Kafka and PostgreSQL; the harness the load generator,
    # the observer and the mail sink.
    unmeasured = f", without {' and '.join(cpu['not_measured'])}" if cpu["not_measured"] else ""
    table.add_row(f"system CPU per order (ms){unmeasured}", _number(cpu["system_total"], 2))
    table.add_row("harness CPU per order (ms)", _number(cpu["harness_total"], 2))
    table.add_row(
        f"CPU limit of the system (orders/s on {budget['cpus']} cores)",
        _number(budget["cpu_limit_orders_per_second"]),
    )
    table.add_row("throughput / CPU limit", _number(budget["throughput_to_cpu_limit"], 3))
    ratios = report.get("ratios")
    if ratios:
        table.add_row(
            f"machine limit (orders/s, bound by {ratios['bound_by']})",
            _number(ratios["limit_orders_per_second"]),
        )
        table.add_row("throughput / limit", _number(ratios["throughput_to_limit"], 3))
    return table


def _latency_table(latency: Mapping[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("hop")
    for column in ("count", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="right")
    for hop, summary in latency.items():
        if summary is None:
            table.add_row(hop.replace("_", " "), "0", "—", "—", "—", "—")
            continue
        table.add_row(
            hop.replace("_", " "),
            _number(summary["count"]),
            *(_number(summary[column]) for column in ("p50", "p95", "p99", "max")),
        )
    return table


def _service_table(report: Mapping[str, Any]) -> Table:
    table = Table(title="Cost per process (main run)")
    table.add_column("process")
    table.add_column("CPU ms / order", justify="right")
    table.add_column("peak RSS MB", justify="right")
    table.add_column("commits / order", justify="right")
    cpu = report["cpu_ms_per_order"]
    peaks = report.get("peak_rss_mb", {})
    commits = report["commits_per_order"]["by_service"]
    for name, ms in cpu["system"].items():
        # Commits are counted per service database: Kafka and PostgreSQL have none.
        committed = _number(commits[name], 2) if name in commits else ""
        table.add_row(name, _number(ms, 2), _number(peaks.get(name)), committed)
    table.add_row("system", _number(cpu["system_total"], 2), "", "", end_section=True)
    for name, ms in cpu["harness"].items():
        table.add_row(name.replace("_", " "), _number(ms, 2), _number(peaks.get(name)), "")
    table.add_row("harness", _number(cpu["harness_total"], 2), "", "")
    return table


def _baseline_table(report: Mapping[str, Any]) -> Table:
    baseline, ratios = report["baseline"], report["ratios"]
    kafka, postgres = baseline["kafka"], baseline["postgres"]
    table = Table(title="Baseline on the same machine, same run", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row(
        f"raw Kafka, {kafka['messages']:,} records of {kafka['record_bytes']} B (records/s)",
        _number(kafka["messages_per_second"]),
    )
    table.add_row(
        f"raw PostgreSQL, {postgres['connections']} connections (commits/s)",
        _number(postgres["commits_per_second"]),
    )
    hop = baseline["hop_latency_ms"]
    if hop:
        table.add_row(
            "one consume → publish hop p50 / p99 (ms)",
            f"{_number(hop['p50'])} / {_number(hop['p99'])}",
        )
    table.add_row("Kafka limit (orders/s)", _number(ratios["kafka_limit_orders_per_second"]))
    table.add_row(
        "PostgreSQL limit (orders/s)", _number(ratios["postgres_limit_orders_per_second"])
    )
    table.add_row("throughput / limit", _number(ratios["throughput_to_limit"], 3))
    table.add_row("max rate / limit", _number(ratios["max_rate_to_limit"], 3))
    table.add_row(
        "placed → reserved p50 / hop p50", _number(ratios["placed_to_reserved_p50_to_hop_p50"])
    )
    return table


def _search_table(search: Mapping[str, Any], title: str) -> Table:
    table = Table(title=f"{title} ({search['step_seconds']:.0f} s steps)")
    columns = (
        "offered/s",
        "completed/s",
        "lag growth/s",
        "records in/s",
        "system CPU ms/order",
        "kept up",
        "sustainable",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for step in search["steps"]:
        table.add_row(
            _number(step["offered"]),
            _number(step["completed_per_second"]),
            _number(step["lag_growth_per_second"]),
            _number(step["records_arriving_per_second"]),
            _number(step["system_cpu_ms_per_order"], 2),
            _number(step["kept_up"]),
            _number(step["sustainable"]),
        )
    return table


def _curve_table(curve: Mapping[str, Any]) -> Table:
    table = Table(title=f"Latency against load (max {curve['max_orders_per_second']:.1f}/s), ms")
    for column in (
        "share of max",
        "offered/s",
        "completed/s",
        "placed→reserved p50",
        "p99",
        "whole flow p50",
        "p99",
    ):
        table.add_column(column, justify="right")
    for point in curve["points"]:
        reserved = point["latency_ms"].get("placed_to_reserved") or {}
        whole = point["latency_ms"].get("whole_flow") or {}
        table.add_row(
            f"{point['fraction_of_max']:.0%}",
            _number(point["offered"]),
            _number(point["orders_per_second"]),
            _number(reserved.get("p50")),
            _number(reserved.get("p99")),
            _number(whole.get("p50")),
            _number(whole.get("p99")),
        )
    return table


def _recovery_table(recovery: Mapping[str, Any]) -> Table:
    table = Table(
        title=f"Lag recovery: {recovery['service']} paused {recovery['pause_seconds']:.0f} s "
        f"at {recovery['offered']:.1f} orders/s",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("peak backlog (records)", _number(recovery["peak_backlog_records"]))
    table.add_row("normal lag (records)", _number(recovery["normal_lag_records"]))
    table.add_row("seconds from resume to normal lag", _number(recovery["seconds_to_normal_lag"]))
    table.add_row("seconds from resume to zero lag", _number(recovery["seconds_to_zero_lag"]))
    return table


def _scaling_table(scaling: Mapping[str, Any]) -> Table:
    table = Table(title=f"Scaling out {scaling['service']}")
    for column in ("replicas", "offered/s", "orders", "completed/s"):
        table.add_column(column, justify="right")
    for point in scaling["points"]:
        table.add_row(
            str(point["replicas"]),
            _number(point["offered"]),
            _number(point["orders"]),
            _number(point["orders_per_second"]),
        )
    return table
