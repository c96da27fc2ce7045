"""One fault run from start to report: seed, stream orders while a caller injects faults,
drain, settle the poison, check the invariants, write `reports/faults.json`.

The service faults (tests/faults/test_service_faults.py) and the infrastructure faults
(tests/faults/test_infrastructure_faults.py) are two callers of `run_faults`, each with
its own list of steps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.faults.injections import PoisonRecord, poison_records, publish_poison, settle_poison
from tests.faults.invariants import check_invariants, drain
from tests.faults.load import BUDGETS, Budget, Workload, seed_catalogue
from tests.faults.system import FaultySystem
from tests.infrastructure import REPO
from tests.kafka_tools import eventually

REPORT_PATH = REPO / "reports" / "faults.json"
POISON_SETTLE_SECONDS = 60.0

Step = Callable[[FaultySystem, Workload], Awaitable[None]]
"""One fault injection (or a pause); run at its place in the order stream."""


def budget_from_environment() -> Budget:
    name = os.environ.get("OMS_FAULTS_BUDGET", "short")
    if name not in BUDGETS:
        raise ValueError(f"OMS_FAULTS_BUDGET must be one of {sorted(BUDGETS)}, not {name!r}")
    return BUDGETS[name]


def report_path() -> Path:
    return Path(os.environ.get("OMS_FAULTS_REPORT") or REPORT_PATH)


def inject_poison(poison: list[PoisonRecord]) -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await publish_poison(system, poison)

    return step


@dataclass
class FaultRun:
    report: dict[str, Any]
    workload: Workload

    @property
    def lost(self) -> int:
        return int(self.report["lost"])

    @property
    def duplicated_effects(self) -> int:
        return int(self.report["duplicated_effects"])

    def failed_checks(self) -> dict[str, Any]:
        return {
            name: result for name, result in self.report["invariants"].items() if not result["ok"]
        }


async def run_faults(
    system: FaultySystem,
    budget: Budget,
    steps: Sequence[Step],
    *,
    suite: str,
    with_poison: bool = True,
) -> FaultRun:
    """Streams `budget.orders` orders; runs `steps` in turn, each once a further share of
    the orders has been acknowledged, so the faults spread over the stream; then drains
    and checks. Poison records, when asked for, go out in the middle of the stream."""
    started = time.monotonic()
    workload = Workload.plan(system, budget)
    await seed_catalogue(system, workload.stock)
    poison = poison_records(workload.run_id, workload.stock.plentiful[0]) if with_poison else []
    planned: list[Step] = list(steps)
    if poison:
        planned.insert(len(planned) // 2, inject_poison(poison))
    async with workload.running():
        for number, step in enumerate(planned, start=1):
            await workload.wait_acknowledged(budget.orders * number // (len(planned) + 1))
            await step(system, workload)
        await workload.wait_stream()
        await system.wait_all_healthy()
        # Customer service goes on during the drain: an order delivered late is returned late.
        drained = await drain(system, workload, budget.drain_timeout)
    notification_kills = [
        fault.at
        for fault in system.faults.injected
        if fault.target == "notification" and fault.kind == "service_kill"
    ]
    dead_letter_total = 0
    if poison:

        async def poison_settled() -> bool:
            nonlocal dead_letter_total
            dead_letter_total = await settle_poison(system, poison)
            return all(record.settled for record in poison)

        # An unsettled record is reported below, record by record.
        with contextlib.suppress(AssertionError):
            await eventually(poison_settled, timeout=POISON_SETTLE_SECONDS, interval=1.0)
    else:
        dead_letter_total = await settle_poison(system, [])
    invariants = await check_invariants(system, workload, notification_kills)
    poison_lost = sum(1 for record in poison if not record.settled)
    poison_doubled = sum(1 for record in poison if record.settled and not record.exactly_once)
    lost = invariants.lost + poison_lost + (0 if drained.complete else len(drained.not_terminal))
    report: dict[str, Any] = {
        "suite": suite,
        "budget": budget.name,
        "namespace": system.names.namespace,
        "duration_seconds": round(time.monotonic() - started, 1),
        "orders": {
            "submitted": len(workload.orders),
            "acknowledged": workload.acknowledged,
            "accounted": sum(invariants.figures["statuses"].values()),
            "statuses": invariants.figures["statuses"],
            "channel_resends": sum(o.send_attempts - 1 for o in workload.orders if o.send_attempts),
            "customer_cancellations": dict(
                Counter(str(code) for code in workload.actions.cancel_answers.values())
            ),
            "cancellations_not_needed": len(workload.actions.cancel_skipped),
            "returns_completed": len(workload.actions.returns_completed),
            "returns_not_made": len(workload.actions.returns_refused),
            "customer_action_errors": workload.actions.errors[:10],
        },
        "faults": system.faults.by_kind(),
        "fault_timeline": [
            {"kind": fault.kind, "target": fault.target, "at_seconds": round(fault.at - started, 1)}
            for fault in system.faults.injected
            if fault.kind not in ("duplicate_record", "poison_record")
        ],
        "stream_seconds": round(
            max((o.acknowledged_at or 0.0) for o in workload.orders) - workload.started_at, 1
        ),
        "lost": lost,
        "duplicated_effects": invariants.duplicated_effects + poison_doubled,
        "dead_letters": {
            "total": dead_letter_total,
            "poison_records": len(poison),
            "poison_settled": len(poison) - poison_lost,
            "poison_outcomes": [
                {"label": record.label, "topic": record.topic, "outcomes": record.outcomes}
                for record in poison
            ],
        },
        "drain_seconds": drained.seconds,
        "drain": {
            "complete": drained.complete,
            "not_terminal": dict(list(drained.not_terminal.items())[:10]),
            "unsent_outbox": drained.unsent_outbox,
            "pending_notifications": drained.pending_notifications,
            "consumer_lag": drained.consumer_lag,
        },
        "invariants": invariants.as_json(),
        "figures": {k: v for k, v in invariants.figures.items() if k != "stock"},
        "stock": invariants.figures["stock"],
    }
    write_report(report)
    print(render(report))  # the figures of the run, shown by `pytest -s` and `make faults`
    return FaultRun(report, workload)


_SESSION_REPORTS: dict[str, dict[str, Any]] = {}
"""Every suite's report of this test session: the file sums them up."""


def write_report(report: dict[str, Any]) -> None:
    """Writes the session's figures: the totals at the top level (orders, faults by
    kind, lost, duplicated effects, dead letters, the longest drain) and each suite's
    whole report under `suites`."""
    _SESSION_REPORTS[report["suite"]] = report
    suites = list(_SESSION_REPORTS.values())
    faults: Counter[str] = Counter()
    for suite in suites:
        faults.update(suite["faults"])
    combined = {
        "budget": report["budget"],
        "duration_seconds": round(sum(s["duration_seconds"] for s in suites), 1),
        "orders": sum(s["orders"]["submitted"] for s in suites),
        "orders_accounted": sum(s["orders"]["accounted"] for s in suites),
        "faults": dict(sorted(faults.items())),
        "lost": sum(s["lost"] for s in suites),
        "duplicated_effects": sum(s["duplicated_effects"] for s in suites),
        "dead_letters": sum(s["dead_letters"]["total"] for s in suites),
        "poison_records": sum(s["dead_letters"]["poison_records"] for s in suites),
        "poison_settled": sum(s["dead_letters"]["poison_settled"] for s in suites),
        "drain_seconds": max(s["drain_seconds"] for s in suites),
        "suites": _SESSION_REPORTS,
    }
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(combined, indent=2) + "\n")


def render(report: dict[str, Any]) -> str:
    orders = report["orders"]
    lines = [
        f"fault suite {report['suite']} ({report['budget']}): {report['duration_seconds']} s",
        f"  orders: {orders['submitted']} submitted, {orders['accounted']} accounted, "
        f"statuses {orders['statuses']}",
        f"  faults: {report['faults']}",
        f"  lost: {report['lost']}   duplicated effects: {report['duplicated_effects']}",
        f"  dead letters: {report['dead_letters']['total']} "
        f"(poison {report['dead_letters']['poison_settled']}/"
        f"{report['dead_letters']['poison_records']} settled)",
        f"  drain: {report['drain_seconds']} s after the last fault "
        f"({'complete' if report['drain']['complete'] else 'INCOMPLETE'})",
    ]
    lines += [f"  customer action error: {error}" for error in orders["customer_action_errors"]]
    lines += [
        f"  FAILED {name}: {result['examples']}"
        for name, result in report["invariants"].items()
        if not result["ok"]
    ]
    return "\n".join(lines)


def pause(seconds: float) -> Step:
    async def step(_system: FaultySystem, _workload: Workload) -> None:
        await asyncio.sleep(seconds)

    return step
