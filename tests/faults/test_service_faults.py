"""Service faults while orders flow: kill -9 of each service in turn (started again), a
second inventory replica added and removed (two rebalances), copies of consumed events
re-published byte for byte, and poison records on the channel and returns topics. Then
nothing may be lost and no effect doubled, judged from each service's own data.

`OMS_FAULTS_BUDGET=short` (the default, part of `make test`) or `long` (`make faults`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.e2e.system import SERVICES
from tests.faults.injections import publish_duplicates
from tests.faults.invariants import check_invariants
from tests.faults.load import Budget, PlannedOrder, Workload
from tests.faults.scenario import FaultRun, Step, budget_from_environment, run_faults
from tests.faults.system import FaultySystem, faulty_system
from tests.infrastructure import REPO, Infrastructure

BUDGET = budget_from_environment()
DOWN_SECONDS = 1.0
"""How long a killed service stays down: records pile up for it meanwhile."""

pytestmark = [
    pytest.mark.faults,
    pytest.mark.e2e,
    pytest.mark.timeout(480 if BUDGET.name == "short" else 3600),
]


def kill_and_start(service: str) -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await system.kill(service)
        await asyncio.sleep(DOWN_SECONDS)
        await system.start(service, wait=False)

    return step


def add_replica(service: str) -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await system.add_replica(service)

    return step


def remove_replica(service: str) -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await system.remove_replica(service)

    return step


def duplicates(count: int, seed: int) -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await publish_duplicates(system, count, seed)

    return step


def service_fault_steps(budget: Budget) -> list[Step]:
    steps: list[Step] = []
    for round_number in range(budget.rounds):
        steps += [kill_and_start(service) for service in SERVICES[:2]]
        steps.append(add_replica("inventory"))
        steps.append(duplicates(budget.duplicates, seed=round_number))
        steps += [kill_and_start(service) for service in SERVICES[2:]]
        steps.append(remove_replica("inventory"))
    return steps


@pytest.fixture(scope="module")
async def faulted(infrastructure: Infrastructure) -> AsyncIterator[tuple[FaultySystem, FaultRun]]:
    async with faulty_system(infrastructure, REPO / "reports" / "faults-logs") as system:
        run = await run_faults(system, BUDGET, service_fault_steps(BUDGET), suite="service")
        yield system, run


async def test_no_order_lost_and_no_effect_doubled_under_service_faults(
    faulted: tuple[FaultySystem, FaultRun],
) -> None:
    _system, run = faulted

    faults = run.report["faults"]
    assert faults.get("service_kill") == len(SERVICES) * BUDGET.rounds, faults
    assert faults.get("replica_added") == faults.get("replica_removed") == BUDGET.rounds
    assert faults.get("duplicate_record", 0) > 0 and faults.get("poison_record", 0) > 0
    assert run.report["drain"]["complete"], (
        run.report["drain"],
        run.report["orders"]["customer_action_errors"],
    )
    assert run.failed_checks() == {}
    assert run.lost == 0
    assert run.duplicated_effects == 0
    assert (
        run.report["dead_letters"]["poison_settled"] == run.report["dead_letters"]["poison_records"]
    )
    assert run.report["orders"]["customer_action_errors"] == []
    statuses = run.report["orders"]["statuses"]
    assert statuses.get("cancelled", 0) > 0, "scarce stock and customers cancel some orders"
    assert statuses.get("returned", 0) + statuses.get("partially_returned", 0) > 0


async def test_the_invariants_see_a_lost_order_and_doubled_effects(
    faulted: tuple[FaultySystem, FaultRun],
) -> None:
    """The same checks, after the run's data is spoiled on purpose: an order the channel
    sent that the system never heard of, stock received twice, one unit too many on
    hand, and a mail whose Message-ID arrives a second time."""
    system, run = faulted
    workload = run.workload
    sku, per_warehouse = next(iter(workload.stock.initial.items()))
    warehouse = next(iter(per_warehouse))
    connection = await asyncpg.connect(system.database_urls["inventory"])
    try:
        await connection.execute(
            "INSERT INTO stock_movements (sku, warehouse_id, kind, quantity, on_hand_change, "
            "reserved_change, reference) VALUES ($1, $2, 'received', 1, 1, 0, 'spoiled')",
            sku,
            warehouse,
        )
        await connection.execute(
            "UPDATE stock SET on_hand = on_hand + 2 WHERE sku = $1 AND warehouse_id = $2",
            sku,
            warehouse,
        )
    finally:
        await connection.close()
    never_sent = workload.orders[0]
    workload.orders.append(
        PlannedOrder(
            number=len(workload.orders),
            submission=never_sent.submission.model_copy(
                update={"external_order_id": f"load-{workload.run_id}-never"}
            ),
            cancel=False,
            return_first_line=False,
        )
    )
    system.mail.arrivals.append(system.mail.arrivals[0])

    spoiled = await check_invariants(system, workload, notification_kills=[])

    failed = {check.name for check in spoiled.checks if not check.ok}
    assert failed == {
        "every submitted order is placed or rejected",
        "every channel order decided on the order topic",
        "stock: initial + received - shipped + restocked == on hand",
        "stock: every initial receipt applied once",
        "no Message-ID received twice (beyond a resend after a kill)",
    }
    assert spoiled.lost >= 1
    assert spoiled.duplicated_effects >= 2
