"""Infrastructure faults while orders flow: the Kafka broker stopped and started again,
cleanly and with kill -9; PostgreSQL stopped for a few seconds; with three brokers
(`OMS_FAULTS_BROKERS=3`, as `make faults` runs it) also one node killed and one stopped
while the other two carry on. The services are never restarted: their producers and
consumers must find the infrastructure again on their own. Then nothing may be lost and
no effect doubled, judged from each service's own data.

The suite starts a Kafka and a PostgreSQL of its own (tests/faults/infrastructure_faults):
the shared development infrastructure is never stopped. Its report goes to
reports/faults-infrastructure.json unless OMS_FAULTS_REPORT names another file."""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.e2e.system import SERVICES
from tests.faults.infrastructure_faults import LocalInfrastructure
from tests.faults.load import Budget, Workload
from tests.faults.scenario import FaultRun, Step, budget_from_environment, run_faults, write_report
from tests.faults.system import FaultySystem, faulty_system
from tests.infrastructure import REPO

BUDGET = budget_from_environment()
BROKERS = int(os.environ.get("OMS_FAULTS_BROKERS", "1"))
BROKER_DOWN_SECONDS = 5.0
POSTGRES_DOWN_SECONDS = 5.0
NODE_DOWN_SECONDS = 10.0
"""Longer than the cluster's broker session timeout (6 s): the node is fenced and leaves
every ISR, so acks=all writes go on with the two that remain."""
REPORT = REPO / "reports" / "faults-infrastructure.json"
LOGS = REPO / "reports" / "faults-infrastructure-logs"

pytestmark = [
    pytest.mark.faults,
    pytest.mark.e2e,
    pytest.mark.timeout(900 if BUDGET.name == "short" else 3600),
]


def broker_outage(infrastructure: LocalInfrastructure, *, hard: bool) -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await system.stop_broker(hard=hard)
        await asyncio.sleep(BROKER_DOWN_SECONDS)
        await system.start_broker()
        system.assert_all_running()

    return step


def postgres_outage() -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await system.stop_postgres()
        await asyncio.sleep(POSTGRES_DOWN_SECONDS)
        # Down: every service keeps running, retrying (connection errors are transient).
        system.assert_all_running()
        await system.start_postgres()

    return step


def node_outage(infrastructure: LocalInfrastructure, node: int, *, hard: bool) -> Step:
    async def step(system: FaultySystem, _workload: Workload) -> None:
        await infrastructure.stop_one_broker(node, hard=hard)
        system.faults.record("broker_node_kill" if hard else "broker_node_stop", f"kafka-{node}")
        await asyncio.sleep(NODE_DOWN_SECONDS)
        system.assert_all_running()
        await infrastructure.start_one_broker(node)

    return step


def infrastructure_fault_steps(infrastructure: LocalInfrastructure, budget: Budget) -> list[Step]:
    steps: list[Step] = []
    for round_number in range(budget.rounds):
        steps += [
            broker_outage(infrastructure, hard=False),
            postgres_outage(),
            broker_outage(infrastructure, hard=True),
        ]
        if infrastructure.brokers == 3:
            # A different node each round, so each one's loss is survived once.
            steps += [
                node_outage(infrastructure, 1 + round_number % 3, hard=True),
                node_outage(infrastructure, 1 + (round_number + 1) % 3, hard=False),
            ]
    return steps


def expected_faults(budget: Budget, brokers: int) -> dict[str, int]:
    expected = {"broker_stop": budget.rounds, "broker_kill": budget.rounds}
    expected["postgres_stop"] = budget.rounds
    if brokers == 3:
        expected |= {"broker_node_kill": budget.rounds, "broker_node_stop": budget.rounds}
    return dict(sorted(expected.items()))


LOG_SIGNS = {
    "producer_recreated": re.compile(r"kafka producer recreated"),
    "out_of_order_sequence": re.compile(r"OutOfOrderSequence"),
    "relay_interrupted": re.compile(r"outbox relay interrupted"),
    "tracebacks": re.compile(r"^Traceback", re.MULTILINE),
}


def log_signs(system: FaultySystem) -> dict[str, dict[str, int]]:
    """How often each service's log shows the signs of recovery worth watching."""
    signs: dict[str, dict[str, int]] = {}
    for service in SERVICES:
        text = system.processes[service][0].log_path.read_text(errors="replace")
        counts = Counter({name: len(pattern.findall(text)) for name, pattern in LOG_SIGNS.items()})
        signs[service] = {name: count for name, count in counts.items() if count}
    return signs


@pytest.fixture(scope="module")
def report_file() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("OMS_FAULTS_REPORT"):
            patch.setenv("OMS_FAULTS_REPORT", str(REPORT))
        yield


@pytest.fixture(scope="module")
async def faulted(
    report_file: None,
) -> AsyncIterator[tuple[LocalInfrastructure, FaultySystem, FaultRun, dict[str, int]]]:
    async with (
        LocalInfrastructure(brokers=BROKERS) as infrastructure,
        faulty_system(infrastructure.infrastructure(), LOGS, control=infrastructure) as system,
    ):
        if BROKERS == 3:
            # Every namespace topic on all three nodes, before any order flows.
            await infrastructure.replicate_everywhere(system.names.all())
        pids = {service: _pid(system, service) for service in SERVICES}
        run = await run_faults(
            system,
            BUDGET,
            infrastructure_fault_steps(infrastructure, BUDGET),
            suite=f"infrastructure ({BROKERS} broker{'s' if BROKERS > 1 else ''})",
            with_poison=False,
        )
        run.report["infrastructure"] = {
            "brokers": BROKERS,
            "outages": [
                {"what": what, "down_seconds": seconds} for what, seconds in infrastructure.outages
            ],
            "service_restarts": sum(
                1 for service in SERVICES if _pid(system, service) != pids[service]
            ),
            "log_signs": log_signs(system),
        }
        write_report(run.report)
        yield infrastructure, system, run, pids


def _pid(system: FaultySystem, service: str) -> int:
    process = system.processes[service][0].process
    assert process is not None
    return process.pid


async def test_no_order_lost_and_no_effect_doubled_under_infrastructure_faults(
    faulted: tuple[LocalInfrastructure, FaultySystem, FaultRun, dict[str, int]],
) -> None:
    _infrastructure, system, run, pids = faulted

    assert run.report["faults"] == expected_faults(BUDGET, BROKERS)
    # Recovery on their own: the same processes ran from the first order to the last.
    system.assert_all_running()
    assert {service: _pid(system, service) for service in SERVICES} == pids
    assert run.report["drain"]["complete"], (
        run.report["drain"],
        run.report["orders"]["customer_action_errors"],
    )
    assert run.failed_checks() == {}
    assert run.lost == 0
    assert run.duplicated_effects == 0
    assert run.report["orders"]["accounted"] == run.report["orders"]["submitted"]
    assert run.report["orders"]["customer_action_errors"] == []


async def test_every_outage_was_real_and_ended(
    faulted: tuple[LocalInfrastructure, FaultySystem, FaultRun, dict[str, int]],
) -> None:
    """The faults were injected for real: each stop was followed by a start, the
    infrastructure ran again at the end, and the broker did go away (the services saw it)."""
    infrastructure, _system, run, _pids = faulted
    outages = run.report["infrastructure"]["outages"]
    stops = sum(run.report["faults"].values())
    assert len(outages) == stops
    assert all(outage["down_seconds"] >= 1.0 for outage in outages)
    assert len(infrastructure.kafka.running_pids()) == BROKERS
    signs = run.report["infrastructure"]["log_signs"]
    assert any(service_signs.get("relay_interrupted") for service_signs in signs.values()), signs
