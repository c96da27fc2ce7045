"""One benchmark run: the system started on fresh databases and topics, then the phases,
each offering orders open-loop and waiting until every one of them has finished its flow:

- max-rate: rising offered rates until consumer lag grows without bound;
- main: N orders at the offered rate, with latencies, CPU, memory, messages and commits;
- latency-curve: latency at fractions of the maximum;
- lag-recovery: one service paused at half the maximum, then resumed;
- scaling: throughput with more replicas of the busiest service;
- traced: the maximum rate again, the services restarted with every trace recorded;
- baseline: the bare broker and database, once the services are stopped.

The CPU of the system (the services, Kafka, PostgreSQL) is counted apart from the
harness's: the load generator and the observer share the benchmark's own process, the
SMTP sink has a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from rich.progress import Progress, TaskID

from bench import analysis, baseline
from bench.infrastructure import Infrastructure, sqlalchemy_url
from bench.mail_sink import mail_sink
from bench.observer import (
    COMPLETED,
    HOPS,
    SUBMITTED,
    FlowLedger,
    FlowObserver,
    LagMonitor,
    per_topic,
)
from bench.orders import (
    OpenLoopSender,
    catalogue,
    order_stream,
    seed_catalogue,
)
from bench.processes import (
    SERVICES,
    Fleet,
    ResourceMonitor,
    difference,
    free_port,
    per_service,
)
from bench.traffic import mean_record_bytes
from contracts.events.channel import OrderSubmitted
from services.kit.settings import ServiceSettings
from services.kit.topics import TopicNames

PHASES = ("max-rate", "main", "latency-curve", "lag-recovery", "scaling", "traced", "baseline")
LOAD_GENERATOR = "load_generator_and_observer"
"""The benchmark's own process: the open-loop sender, the observer and the lag monitor."""
MAIL_SINK = "mail_sink"
HARNESS = (LOAD_GENERATOR, MAIL_SINK)
INFRASTRUCTURE = ("kafka", "postgres")
TRACE_RATIO_VARIABLE = "OMS_TRACE_SAMPLE_RATIO"
CONSUMERS_VARIABLE = "OMS_CONSUMERS"
TRACED_RATIO = 1.0
"""The sample ratio of the traced phase: every trace recorded."""
STATS_SETTLE_SECONDS = 11.0
"""PostgreSQL publishes an idle backend's statistics within 10 s: wait that long before
reading commit counters, or a phase's last commits are missing."""
RECOVERY_LEAD_SECONDS = 15.0
"""Load before the pause: the normal lag level is read from its second half."""
ZERO_LAG_WAIT_SECONDS = 30.0
"""How long the load goes on after the paused service's lag is back to normal, for a
reading of no lag at all."""
GROUP_SETTLE_SECONDS = 60.0
MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class BenchConfig:
    orders: int | None = None
    """Orders of the main run; by default `rate` times `main_seconds`."""
    rate: float | None = None
    """Offered rate of the main run; by default the maximum found, else `fallback_rate`."""
    main_seconds: float = 75.0
    fallback_rate: float = 50.0
    warmup: float = 0.1
    phases: frozenset[str] = frozenset(PHASES)
    step_seconds: float = 30.0
    start_rate: float = 5.0
    rate_growth: float = 1.5
    rate_resolution: float = 0.1
    search_budget_seconds: float = 900.0
    lag_tolerance: float = 0.05
    """A step is sustainable when its lag grows by at most this share of the records
    arriving, and its orders are completed at least this close to the offered rate."""
    curve_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    pause_seconds: float = 60.0
    pause_service: str | None = None
    scale_service: str | None = None
    replicas: tuple[int, ...] = (1, 2, 4)
    scaling_overload: float = 2.0
    """Scaling bursts are offered at this multiple of the maximum, so they saturate."""
    partitions: int = 6
    baseline_seconds: float = 10.0
    baseline_connections: int = 4
    baseline_messages: int | None = None
    """Records of the raw Kafka baseline; by default as many as the main run made."""
    drain_timeout: float = 600.0
    trace_ratio: float | None = None
    """The services' trace sample ratio in every phase but `traced`; None: the ratio they
    ship with."""
    traced_search_budget_seconds: float = 180.0
    service_env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path = Path(".local/bench-logs")


@dataclass(frozen=True)
class PhaseRun:
    name: str
    rate: float
    submitted: int
    started: float
    """monotonic seconds when the first order was due"""
    sent: float
    """monotonic seconds when the broker had acknowledged the last order"""
    drained: bool


class BenchError(RuntimeError):
    pass


class Bench:
    def __init__(
        self, config: BenchConfig, infrastructure: Infrastructure, progress: Progress
    ) -> None:
        self.config = config
        self.infrastructure = infrastructure
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:8]
        self.names = TopicNames(f"bench{self.run_id}")
        self.databases = {service: f"bench_{self.run_id}_{service}" for service in SERVICES}
        self.skus = catalogue(self.run_id)
        self.ledger = FlowLedger()
        self.resources = ResourceMonitor()
        self.report: dict[str, Any] = {}
        self._main_totals = (0, 0)
        """(records on every topic, mean record bytes) of the main run: the baseline's size"""

    # --- the whole run --------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        self.report.update(
            run_id=self.run_id,
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            # Others' work on the machine shows in the load average: read it at both ends.
            machine={"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
            config=_config_view(self.config),
            trace_sample_ratio=self._trace_ratio,
        )
        log_dir = self.config.log_dir / self.run_id
        self.report["logs"] = str(log_dir)
        self._step("creating topics and databases")
        await self.infrastructure.create_topics(self.names.all(), self.config.partitions)
        try:
            for database in self.databases.values():
                await self.infrastructure.create_database(database)
            await self._with_system(log_dir)
        finally:
            await self.infrastructure.drop_databases(
                [*self.databases.values(), self._baseline_database]
            )
            await self.infrastructure.delete_topics([*self.names.all(), *self._baseline_topics])
        self.report["machine"]["load_average_at_end"] = os.getloadavg()
        return self.report

    @property
    def _trace_ratio(self) -> float:
        """The services' trace sample ratio in every phase but `traced`."""
        ratio = self.config.trace_ratio
        return shipped_trace_ratio() if ratio is None else ratio

    @property
    def _baseline_database(self) -> str:
        return f"bench_{self.run_id}_baseline"

    @property
    def _baseline_topics(self) -> tuple[str, ...]:
        prefix = f"{self.names.namespace}.baseline"
        return (f"{prefix}.throughput", f"{prefix}.hop.in", f"{prefix}.hop.out")

    async def _with_system(self, log_dir: Path) -> None:
        with mail_sink(free_port()) as mail:
            self._smtp_port = mail.port
            fleet = Fleet(log_dir, self._environments(self._trace_ratio))
            self.fleet = fleet
            self._track_infrastructure()
            self.resources.track(MAIL_SINK, mail.pid)
            sampler = asyncio.create_task(self.resources.sample_forever())
            try:
                self._step("starting the five services")
                await fleet.start()
                self.resources.track_fleet(fleet)
                self._step("loading warehouses, products and stock")
                await seed_catalogue(fleet.url("order"), fleet.url("inventory"), self.skus)
                await self._phases()
                self.report["mail_received"] = mail.received
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
                await asyncio.to_thread(fleet.stop)
        self.report["peak_rss_mb"] = {
            service: round(peak / MEGABYTE, 1)
            for service, peak in _peak_per_service(self.resources.peak_rss).items()
        }
        if "baseline" in self.config.phases:
            await self._baseline()

    def _environments(self, trace_ratio: float) -> dict[str, dict[str, str]]:
        common = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.infrastructure.bootstrap,
            "OMS_TOPIC_NAMESPACE": self.names.namespace,
            "OMS_NOTIFICATION_SMTP_HOST": "127.0.0.1",
            "OMS_NOTIFICATION_SMTP_PORT": str(self._smtp_port),
            # The warehouse and the carrier act at once: the benchmark measures the
            # system, not simulated delays.
            "OMS_FULFILMENT_AUTO": "true",
            "OMS_FULFILMENT_AUTO_PACK_SECONDS": "0",
            "OMS_FULFILMENT_AUTO_SHIP_SECONDS": "0",
            "OMS_FULFILMENT_AUTO_DELIVER_SECONDS": "0",
            **self.config.service_env,
            # Always given: a ratio the benchmark's own environment holds must not reach
            # the services unreported.
            **tracing_environment(trace_ratio),
        }
        return {
            service: {
                **common,
                f"{service.upper()}_DATABASE_URL": sqlalchemy_url(
                    self.infrastructure.database_url(self.databases[service])
                ),
            }
            for service in SERVICES
        }

    def _track_infrastructure(self) -> None:
        self.resources.track(LOAD_GENERATOR, os.getpid())
        local = self.infrastructure.local
        if local is None:
            return
        kafka, postgres = local.kafka_pid(), local.postgres_pid()
        if kafka is not None:
            self.resources.track("kafka", kafka)
        if postgres is not None:
            self.resources.track("postgres", postgres, with_children=True)

    async def _phases(self) -> None:
        config = self.config
        sender = OpenLoopSender(
            self.infrastructure.bootstrap,
            self.names.of_event(OrderSubmitted),
            self.ledger.submitted,
        )
        observer = FlowObserver(self.infrastructure.bootstrap, self.names, self.ledger)
        lag = LagMonitor(
            self.infrastructure.bootstrap, self.names, SERVICES, partitions=config.partitions
        )
        async with sender.open(), observer.running(), lag.running():
            self.sender, self.observer, self.lag = sender, observer, lag
            max_rate = await self._max_rate() if "max-rate" in config.phases else None
            main_rate = config.rate or max_rate or config.fallback_rate
            main = await self._main(main_rate)
            reference = max_rate or main["orders_per_second"]
            busiest = analysis.busiest(main["cpu_ms_per_order"])
            self.report["busiest_service"] = busiest
            if reference is None:
                raise BenchError("no completed flows: nothing to base the later phases on")
            if "latency-curve" in config.phases:
                await self._latency_curve(reference)
            if "lag-recovery" in config.phases:
                await self._lag_recovery(reference / 2, config.pause_service or busiest)
            if "scaling" in config.phases:
                await self._scaling(reference, config.scale_service or busiest)
            if "traced" in config.phases:
                await self._traced(reference)

    def _step(self, text: str) -> None:
        self.progress.console.log(text)

    # --- offering orders ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _showing(
        self, phase: str, description: str, total: int | None
    ) -> AsyncIterator[TaskID]:
        task = self.progress.add_task(description, total=total, sent=0)

        def refresh() -> None:
            counts = self.ledger.phase(phase)
            self.progress.update(
                task, completed=counts.completed + counts.failed, sent=counts.submitted
            )

        async def refresh_forever() -> None:
            while True:
                refresh()
                await asyncio.sleep(0.25)

        refresher = asyncio.create_task(refresh_forever())
        try:
            yield task
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            refresh()
            self.progress.stop_task(task)

    async def _offer(self, phase: str, rate: float, count: int, label: str) -> PhaseRun:
        """Offers `count` orders at `rate`, then waits until each has finished its flow."""
        async with self._showing(phase, f"{label} {rate:.1f}/s", count):
            started = time.monotonic()
            submitted = await self.sender.send(
                order_stream(self.run_id, phase, self.skus), rate=rate, count=count
            )
            sent = time.monotonic()
            drained = await self._drain(phase)
        return PhaseRun(phase, rate, submitted, started, sent, drained)

    async def _drain(self, phase: str) -> bool:
        deadline = time.monotonic() + self.config.drain_timeout
        while not self.ledger.finished(phase):
            self.fleet.check_running()
            if self.ledger.strangers:
                raise BenchError(
                    "orders were placed or rejected under a ce_correlationid that names no "
                    "submitted order: the observer matches them to their submissions by it"
                )
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    def _latencies(self, phase: str) -> tuple[dict[str, Any], list[float]]:
        """Latency summaries per hop after the warm-up, and every completion time in
        submission order."""
        flows = analysis.after_warmup(self.ledger.flows(phase), self.config.warmup)
        latencies = analysis.hop_latencies_ms(flows, HOPS)
        summaries = {
            hop: summary.as_dict() if (summary := analysis.summarize(values)) else None
            for hop, values in latencies.items()
        }
        every_flow = self.ledger.flows(phase)
        completions = [flow[COMPLETED] for flow in every_flow if COMPLETED in flow]
        return summaries, completions

    def _lag_verdict(self, run: PhaseRun) -> analysis.LagVerdict | None:
        samples = [sample.total() for sample in self.lag.since(run.started, run.sent)]
        if len(samples) < 4:
            return None
        return analysis.judge_lag(samples, tolerance=self.config.lag_tolerance)

    # --- max rate ---------------------------------------------------------------------

    async def _max_rate(self) -> float | None:
        config = self.config
        search = await self._search(
            "search", config.start_rate, "max-rate search", config.search_budget_seconds
        )
        self.report["max_rate"] = search
        best: float | None = search["orders_per_second"]
        return best

    async def _search(
        self, prefix: str, start: float, label: str, budget_seconds: float
    ) -> dict[str, Any]:
        """Offered rates from `start` on, rising until one is not sustainable, then
        narrowing the gap: the highest sustainable rate, and what each step showed."""
        config = self.config
        outcomes: dict[float, bool] = {}
        steps: list[dict[str, Any]] = []
        cpu_of_rate: dict[float, float | None] = {}
        budget_ends = time.monotonic() + budget_seconds
        exhausted = False
        while True:
            proposed = analysis.next_search_rate(
                outcomes,
                start=start,
                growth=config.rate_growth,
                resolution=config.rate_resolution,
            )
            if proposed is None:
                break
            rate = round(proposed, 1)
            if rate in outcomes:
                break
            if time.monotonic() > budget_ends:
                exhausted = True
                break
            phase = f"{prefix}{len(steps)}"
            cpu_before = self.resources.cpu_seconds()
            run = await self._offer(
                phase, rate, analysis.orders_for(rate, config.step_seconds), label
            )
            cost = self._cpu_per_order(
                difference(self.resources.cpu_seconds(), cpu_before),
                self.ledger.phase(phase).completed,
            )
            cpu_of_rate[rate] = cost.system_total if cost else None
            verdict = self._lag_verdict(run)
            if verdict is None:
                raise BenchError("too few lag readings: give the steps more seconds")
            _, completions = self._latencies(phase)
            completed = analysis.sustained_throughput(completions, config.warmup)
            kept_up = analysis.keeps_up(rate, completed, tolerance=config.lag_tolerance)
            # Sustainable: the lag held its level and the orders were completed as offered.
            outcomes[rate] = verdict.bounded and kept_up
            steps.append(
                {
                    "offered": rate,
                    "sustainable": outcomes[rate],
                    "lag_bounded": verdict.bounded,
                    "kept_up": kept_up,
                    "lag_growth_per_second": round(verdict.lag_growth_per_second, 1),
                    "records_arriving_per_second": round(verdict.arrivals_per_second, 1),
                    "completed_per_second": _rounded(completed),
                    "system_cpu_ms_per_order": _rounded(cpu_of_rate[rate], 2),
                    "drained": run.drained,
                }
            )
            if not run.drained:
                break
        best = analysis.maximum_sustainable_rate(outcomes)
        return {
            "orders_per_second": best,
            "system_cpu_ms_per_order": (
                _rounded(cpu_of_rate[best], 2) if best is not None else None
            ),
            "steps": steps,
            "step_seconds": config.step_seconds,
            "budget_exhausted": exhausted,
        }

    def _cpu_per_order(
        self, cpu_seconds: Mapping[str, float], completed: int
    ) -> analysis.CpuPerOrder | None:
        """CPU per completed order of each process (replicas under their service)."""
        if completed == 0:
            return None
        return analysis.cpu_per_order(per_service(cpu_seconds), completed, harness=HARNESS)

    # --- main run ---------------------------------------------------------------------

    async def _main(self, rate: float) -> dict[str, Any]:
        config = self.config
        count = config.orders or analysis.orders_for(rate, config.main_seconds)
        await asyncio.sleep(STATS_SETTLE_SECONDS)
        commits_before = await self._commits()
        ends_before = await self.lag.partition_ends()
        cpu_before = self.resources.cpu_seconds()
        run = await self._offer("main", rate, count, "main run")
        cpu = difference(self.resources.cpu_seconds(), cpu_before)
        await asyncio.sleep(STATS_SETTLE_SECONDS)
        commits = difference(await self._commits(), commits_before)
        # Every order has finished: whatever lag is left is not work of this run.
        lag_after = (await self.lag.read()).lag
        ends_after = await self.lag.partition_ends()
        offsets = difference(per_topic(ends_after), per_topic(ends_before))
        record_bytes = await mean_record_bytes(
            self.infrastructure.bootstrap, ends_before, ends_after
        )

        latency, completions = self._latencies("main")
        throughput = analysis.sustained_throughput(completions, config.warmup)
        counts = self.ledger.phase("main")
        cost = self._cpu_per_order(cpu, counts.completed)
        if cost is None:
            raise BenchError("no order of the main run completed its flow")
        messages = round(sum(offsets.values()))
        verdict = self._lag_verdict(run)
        main = {
            "offered": rate,
            "orders": run.submitted,
            "completed": counts.completed,
            "failed": counts.failed,
            "drained": run.drained,
            "orders_per_second": throughput,
            "cpu_ms_per_order": {name: ms for name, ms in cost.system.items() if name in SERVICES},
            "lag_bounded": verdict.bounded if verdict else None,
            "kept_up": analysis.keeps_up(rate, throughput, tolerance=config.lag_tolerance),
        }
        by_topic = {
            self.names.logical(topic): round(amount / run.submitted, 2)
            for topic, amount in sorted(offsets.items())
            if amount
        }
        cpus = os.cpu_count() or 1
        cpu_limit = analysis.cpu_limit(cost.system_total, cpus)
        self.report.update(
            orders=run.submitted,
            completed=counts.completed,
            failed=counts.failed,
            incomplete=run.submitted - counts.completed - counts.failed,
            offered_orders_per_second=rate,
            orders_per_second=_rounded(throughput),
            lag_bounded=main["lag_bounded"],
            kept_up=main["kept_up"],
            consumer_lag_after_main=lag_after,
            latency_ms=latency,
            cpu_ms_per_order=_cpu_view(cost),
            # The machine's limit counts the system only: the harness is not the system.
            cpu_budget={
                "cpus": cpus,
                "cpu_limit_orders_per_second": _rounded(cpu_limit),
                "throughput_to_cpu_limit": _rounded(
                    throughput / cpu_limit if throughput and cpu_limit else None, 3
                ),
            },
            messages_per_order={
                "all_topics": round(messages / run.submitted, 2),
                "by_topic": by_topic,
                "mean_record_bytes": round(record_bytes) if record_bytes else None,
            },
            commits_per_order={
                "all_services": round(sum(commits.values()) / run.submitted, 2),
                "by_service": {
                    service: round(commits.get(database, 0) / run.submitted, 2)
                    for service, database in self.databases.items()
                },
            },
        )
        self._main_totals = (messages, round(record_bytes) if record_bytes else 0)
        return main

    async def _commits(self) -> dict[str, float]:
        connection = await asyncpg.connect(self.infrastructure.postgres_admin_url)
        try:
            rows = await connection.fetch(
                "SELECT datname, xact_commit FROM pg_stat_database WHERE datname = ANY($1::text[])",
                list(self.databases.values()),
            )
        finally:
            await connection.close()
        return {row["datname"]: float(row["xact_commit"]) for row in rows}

    # --- latency at fractions of the maximum -------------------------------------------

    async def _latency_curve(self, maximum: float) -> None:
        points = []
        for fraction in self.config.curve_fractions:
            rate = round(maximum * fraction, 1)
            phase = f"curve{round(fraction * 100)}"
            run = await self._offer(
                phase,
                rate,
                analysis.orders_for(rate, self.config.step_seconds),
                f"latency at {fraction:.0%} of max",
            )
            latency, completions = self._latencies(phase)
            points.append(
                {
                    "fraction_of_max": fraction,
                    "offered": rate,
                    "orders": run.submitted,
                    "orders_per_second": _rounded(
                        analysis.sustained_throughput(completions, self.config.warmup)
                    ),
                    "latency_ms": latency,
                }
            )
        self.report["latency_curve"] = {"max_orders_per_second": maximum, "points": points}

    # --- lag recovery -------------------------------------------------------------------

    async def _lag_recovery(self, rate: float, service: str) -> None:
        config = self.config
        phase = "recovery"
        stop = asyncio.Event()
        async with self._showing(phase, f"lag recovery {rate:.1f}/s", None) as task:
            started = time.monotonic()
            sending = asyncio.create_task(
                self.sender.send(
                    order_stream(self.run_id, phase, self.skus), rate=rate, count=None, stop=stop
                )
            )
            try:
                await asyncio.sleep(RECOVERY_LEAD_SECONDS)
                normal = [
                    sample.lag[service]
                    for sample in self.lag.since(started + RECOVERY_LEAD_SECONDS / 2)
                ]
                threshold = analysis.steady_lag_threshold(normal)
                self.progress.update(task, description=f"lag recovery: {service} paused")
                paused_at = time.monotonic()
                self.fleet.pause(service)
                try:
                    await asyncio.sleep(config.pause_seconds)
                finally:
                    self.fleet.resume(service)
                resumed_at = time.monotonic()
                self.progress.update(task, description=f"lag recovery: {service} catching up")
                caught_up = await self._wait_lag_at_most(
                    service,
                    threshold,
                    resumed_at,
                    within_seconds=max(120.0, 4 * config.pause_seconds),
                )
                if caught_up:
                    # Still under load: a reading of no lag at all may follow shortly.
                    await self._wait_lag_at_most(
                        service, 0, resumed_at, within_seconds=ZERO_LAG_WAIT_SECONDS
                    )
            finally:
                stop.set()
                await sending
            drained = await self._drain(phase)
        result = analysis.recovery(
            [(sample.at, sample.lag[service]) for sample in self.lag.since(started)],
            paused_at=paused_at,
            resumed_at=resumed_at,
            threshold=threshold,
        )
        self.report["lag_recovery"] = {
            "service": service,
            "offered": round(rate, 1),
            "pause_seconds": config.pause_seconds,
            "peak_backlog_records": result.peak_lag,
            "normal_lag_records": threshold,
            "seconds_to_normal_lag": _rounded(result.caught_up_after_seconds),
            "seconds_to_zero_lag": _rounded(result.zero_after_seconds),
            "caught_up_within_timeout": caught_up,
            "drained": drained,
        }

    async def _wait_lag_at_most(
        self, service: str, threshold: int, since: float, *, within_seconds: float
    ) -> bool:
        deadline = time.monotonic() + within_seconds
        while time.monotonic() < deadline:
            self.fleet.check_running()
            if any(sample.lag[service] <= threshold for sample in self.lag.since(since)):
                return True
            await asyncio.sleep(0.5)
        return False

    # --- scaling ----------------------------------------------------------------------

    async def _scaling(self, maximum: float, service: str) -> None:
        config = self.config
        rate = round(maximum * config.scaling_overload, 1)
        points = []
        try:
            for replicas in config.replicas:
                self._step(f"scaling: {replicas} replica(s) of {service}")
                await self.fleet.scale(service, replicas)
                self.resources.track_fleet(self.fleet)
                await self._wait_group(service, replicas)
                phase = f"scale{replicas}"
                run = await self._offer(
                    phase,
                    rate,
                    analysis.orders_for(rate, config.step_seconds),
                    f"{replicas} x {service}",
                )
                flows = self.ledger.flows(phase)
                completions = [flow[COMPLETED] for flow in flows if COMPLETED in flow]
                points.append(
                    {
                        "replicas": replicas,
                        "offered": rate,
                        "orders": run.submitted,
                        "orders_per_second": _rounded(
                            analysis.burst_throughput(flows[0][SUBMITTED], completions)
                        ),
                        "drained": run.drained,
                    }
                )
        finally:
            await self.fleet.scale(service, 1)
        self.report["scaling"] = {"service": service, "points": points}

    async def _wait_group(self, service: str, replicas: int) -> None:
        """Until the consumer group has rebalanced onto every consumer of every replica."""
        members = replicas * consumers_per_process(self.fleet.environments[service])
        deadline = time.monotonic() + GROUP_SETTLE_SECONDS
        while time.monotonic() < deadline:
            state, count = await self.lag.group_state(service)
            if state == "Stable" and count == members:
                return
            await asyncio.sleep(0.5)
        raise BenchError(f"the {service} group did not settle on {members} members")

    # --- tracing at 100 % ---------------------------------------------------------------

    async def _traced(self, maximum: float) -> None:
        """The maximum rate searched again with every trace recorded: the services are
        restarted with a sample ratio of 1, and the search starts from the maximum found
        with the ratio of the other phases, so it takes a few steps."""
        self._step(f"restarting the services with {TRACED_RATIO:.0%} of traces recorded")
        await self.fleet.restart(self._environments(TRACED_RATIO))
        self.resources.track_fleet(self.fleet)
        for service in SERVICES:
            await self._wait_group(service, 1)
        search = await self._search(
            "traced",
            maximum,
            f"max-rate, {TRACED_RATIO:.0%} traced",
            self.config.traced_search_budget_seconds,
        )
        self.report["tracing"] = {"sample_ratio": TRACED_RATIO, **search}

    # --- baseline ---------------------------------------------------------------------

    async def _baseline(self) -> None:
        config = self.config
        messages, record_bytes = self._main_totals
        messages = config.baseline_messages or messages
        throughput_topic, hop_in, hop_out = self._baseline_topics
        await self.infrastructure.create_topics(self._baseline_topics, config.partitions)
        self._step(f"baseline: raw Kafka, {messages} records of {record_bytes} bytes")
        kafka = await baseline.kafka_throughput(
            self.infrastructure.bootstrap,
            throughput_topic,
            messages=messages,
            record_bytes=record_bytes,
        )
        self._step(f"baseline: raw PostgreSQL commits for {config.baseline_seconds:.0f} s")
        database = await self.infrastructure.create_database(self._baseline_database)
        postgres = await baseline.postgres_commits(
            database, connections=config.baseline_connections, seconds=config.baseline_seconds
        )
        self._step("baseline: one consume → publish hop")
        hop = await baseline.hop_latency(
            self.infrastructure.bootstrap, hop_in, hop_out, f"{self.names.namespace}.baseline"
        )
        self.report["baseline"] = {
            "kafka": {
                "messages": kafka.messages,
                "record_bytes": kafka.record_bytes,
                "seconds": round(kafka.seconds, 2),
                "messages_per_second": round(kafka.messages_per_second, 1),
                "acks": "all",
                "idempotent": True,
            },
            "postgres": {
                "connections": postgres.connections,
                "seconds": round(postgres.seconds, 2),
                "commits": postgres.commits,
                "commits_per_second": round(postgres.commits_per_second, 1),
            },
            "hop_latency_ms": hop.as_dict() if hop else None,
        }
        self._ratios(kafka.messages_per_second, postgres.commits_per_second, hop)

    def _ratios(
        self,
        kafka_messages_per_second: float,
        commits_per_second: float,
        hop: analysis.LatencySummary | None,
    ) -> None:
        report = self.report
        limit = analysis.machine_limit(
            kafka_messages_per_second=kafka_messages_per_second,
            messages_per_order=report["messages_per_order"]["all_topics"],
            commits_per_second=commits_per_second,
            commits_per_order=report["commits_per_order"]["all_services"],
        )
        throughput = report["orders_per_second"]
        maximum = report.get("max_rate", {}).get("orders_per_second")
        placed_to_reserved = report["latency_ms"].get("placed_to_reserved")
        report["ratios"] = {
            "limit_orders_per_second": round(limit.orders_per_second, 1),
            "kafka_limit_orders_per_second": round(limit.kafka_orders_per_second, 1),
            "postgres_limit_orders_per_second": round(limit.postgres_orders_per_second, 1),
            "bound_by": limit.bound_by,
            "throughput_to_limit": _rounded(
                throughput / limit.orders_per_second if throughput else None, 4
            ),
            "max_rate_to_limit": _rounded(
                maximum / limit.orders_per_second if maximum else None, 4
            ),
            "placed_to_reserved_p50_to_hop_p50": _rounded(
                placed_to_reserved["p50"] / hop.p50 if placed_to_reserved and hop else None, 1
            ),
        }


def tracing_environment(ratio: float) -> dict[str, str]:
    """The services' environment for a trace sample ratio."""
    return {TRACE_RATIO_VARIABLE: str(ratio)}


def consumers_per_process(environment: Mapping[str, str]) -> int:
    """How many members a service process adds to its consumer group."""
    given = environment.get(CONSUMERS_VARIABLE)
    return int(given) if given else int(ServiceSettings.model_fields["consumers"].default)


def shipped_trace_ratio() -> float:
    """The sample ratio the services use when none is given."""
    return float(ServiceSettings.model_fields["trace_sample_ratio"].default)


def _cpu_view(cost: analysis.CpuPerOrder) -> dict[str, Any]:
    """Milliseconds of CPU per order: the system's processes and the harness's apart,
    and which of the system's processes could not be measured (Kafka and PostgreSQL
    given with --bootstrap/--postgres-url run outside the benchmark's reach)."""
    system = [name for name in (*SERVICES, *INFRASTRUCTURE) if name in cost.system]
    return {
        "system": {name: round(cost.system[name], 3) for name in system},
        "system_total": round(cost.system_total, 2),
        "harness": {name: round(cost.harness[name], 3) for name in HARNESS if name in cost.harness},
        "harness_total": round(cost.harness_total, 2),
        "not_measured": [name for name in INFRASTRUCTURE if name not in cost.system],
    }


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _peak_per_service(peaks: Mapping[str, int]) -> dict[str, int]:
    """The largest replica of each service, and the other processes as they are."""
    result: dict[str, int] = {}
    for name, peak in peaks.items():
        key = name.split("#", 1)[0]
        result[key] = max(result.get(key, 0), peak)
    return result


def _config_view(config: BenchConfig) -> dict[str, Any]:
    view = {name: getattr(config, name) for name in config.__dataclass_fields__}
    view["phases"] = [phase for phase in PHASES if phase in config.phases]
    view["log_dir"] = str(config.log_dir)
    view["service_env"] = dict(config.service_env)
    return view
