"""`python -m bench`: the command line of the benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from bench import report
from bench.infrastructure import REPO, LocalInstance, provided
from bench.mail_sink import MailSinkFailed
from bench.phases import PHASES, Bench, BenchConfig, BenchError
from bench.processes import SERVICES, ServiceFailed

SMOKE_ORDERS = 200
SMOKE_RATE = 20.0

console = Console()
app = typer.Typer(name="bench", add_completion=False, pretty_exceptions_enable=False)


class Phase(StrEnum):
    MAX_RATE = "max-rate"
    LATENCY_CURVE = "latency-curve"
    LAG_RECOVERY = "lag-recovery"
    SCALING = "scaling"
    TRACED = "traced"
    BASELINE = "baseline"


class Service(StrEnum):
    ORDER = "order"
    INVENTORY = "inventory"
    FULFILMENT = "fulfilment"
    RETURNS = "returns"
    NOTIFICATION = "notification"


assert {phase.value for phase in Phase} | {"main"} == set(PHASES)
assert {service.value for service in Service} == set(SERVICES)


def parse_environment(assignments: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs for the services' environment."""
    environment = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise typer.BadParameter(f"{assignment!r} is not KEY=VALUE")
        environment[name] = value
    return environment


def resolve_config(
    *,
    smoke: bool,
    quick: bool,
    skip: Sequence[str],
    overrides: Mapping[str, Any],
) -> BenchConfig:
    """The configuration from a preset (none, --quick, --smoke) and the options given;
    an option given always wins over the preset."""
    config = BenchConfig()
    if quick:
        config = replace(
            config,
            main_seconds=30.0,
            step_seconds=12.0,
            pause_seconds=20.0,
            search_budget_seconds=300.0,
            traced_search_budget_seconds=100.0,
            baseline_seconds=5.0,
        )
    if smoke:
        # The main run and the baseline only, on a few hundred orders.
        config = replace(
            config,
            orders=SMOKE_ORDERS,
            rate=SMOKE_RATE,
            phases=frozenset({"main", "baseline"}),
            baseline_seconds=3.0,
            drain_timeout=240.0,
        )
    config = replace(config, phases=config.phases - set(skip))
    given = {name: value for name, value in overrides.items() if value is not None}
    return replace(config, **given)


@app.command()
def main(
    orders: Annotated[
        int | None,
        typer.Option(min=1, help="Orders of the main run [default: rate times --main-seconds]"),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Offered orders/s of the main run [default: the maximum found, else 50]",
        ),
    ] = None,
    main_seconds: Annotated[
        float | None, typer.Option(min=1, help="Length of the main run when --orders is not given")
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(min=0, max=0.9, help="Share of each phase's first orders left out [0.1]"),
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option(
            help=f"{SMOKE_ORDERS} orders at {SMOKE_RATE:.0f}/s; main run and baseline only"
        ),
    ] = False,
    quick: Annotated[
        bool, typer.Option(help="Every phase, with short steps (12 s) and a 20 s pause")
    ] = False,
    skip: Annotated[list[Phase] | None, typer.Option(help="Leave a phase out (repeatable)")] = None,
    step_seconds: Annotated[
        float | None, typer.Option(min=5, help="Length of each search, curve and scaling step [30]")
    ] = None,
    start_rate: Annotated[
        float | None, typer.Option(min=0.1, help="First rate of the maximum-rate search [5]")
    ] = None,
    search_budget: Annotated[
        float | None, typer.Option(min=10, help="Seconds the maximum-rate search may take [900]")
    ] = None,
    pause_seconds: Annotated[
        float | None, typer.Option(min=1, help="How long the paused service stays paused [60]")
    ] = None,
    pause_service: Annotated[
        Service | None, typer.Option(help="Service to pause [default: the busiest]")
    ] = None,
    scale_service: Annotated[
        Service | None, typer.Option(help="Service to scale out [default: the busiest]")
    ] = None,
    replicas: Annotated[
        list[int] | None, typer.Option(min=1, help="Replica counts of the scaling curve [1 2 4]")
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Partitions of every topic of the run [6]")
    ] = None,
    baseline_seconds: Annotated[
        float | None, typer.Option(min=1, help="Length of the PostgreSQL baseline [10]")
    ] = None,
    baseline_messages: Annotated[
        int | None,
        typer.Option(min=1, help="Records of the Kafka baseline [as many as the main run made]"),
    ] = None,
    trace_ratio: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of traces the services record in every phase but 'traced', "
            "which records them all (OMS_TRACE_SAMPLE_RATIO: --service-env cannot set it) "
            "[default: the ratio they ship with]",
        ),
    ] = None,
    service_env: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE added to every service's environment (repeatable)"),
    ] = None,
    report_path: Annotated[Path, typer.Option("--report", help="Where the JSON report goes")] = REPO
    / "reports"
    / "bench.json",
    log_dir: Annotated[Path, typer.Option(help="Services' logs, one folder per run")] = REPO
    / ".local"
    / "bench-logs",
    bootstrap: Annotated[
        str | None,
        typer.Option(
            envvar="OMS_BENCH_BOOTSTRAP",
            help="Kafka to use instead of starting one (with --postgres-url)",
            rich_help_panel="Infrastructure",
        ),
    ] = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            envvar="OMS_BENCH_POSTGRES_URL",
            help="PostgreSQL superuser URL to use instead of starting one",
            rich_help_panel="Infrastructure",
        ),
    ] = None,
    state_dir: Annotated[
        Path,
        typer.Option(
            help="State of the benchmark's own infrastructure", rich_help_panel="Infrastructure"
        ),
    ] = REPO / ".local" / "bench-infra",
    kafka_port: Annotated[int, typer.Option(rich_help_panel="Infrastructure")] = 39092,
    kafka_controller_port: Annotated[int, typer.Option(rich_help_panel="Infrastructure")] = 39093,
    pg_port: Annotated[int, typer.Option(rich_help_panel="Infrastructure")] = 35432,
    keep_infra: Annotated[
        bool,
        typer.Option(
            help="Leave the benchmark's own Kafka and PostgreSQL running",
            rich_help_panel="Infrastructure",
        ),
    ] = False,
) -> None:
    """Push orders through the whole flow (submitted, placed, reserved, shipped,
    delivered, notified) on the real Kafka and PostgreSQL with the five services running,
    and report throughput, latency, CPU per order of the system apart from the harness,
    the maximum rate (with the services' trace sample ratio and with every trace
    recorded), scaling, lag recovery and a same-run baseline of the bare broker and
    database.

    Without --bootstrap/--postgres-url it starts its own Kafka and PostgreSQL from
    deploy/local/ (state in .local/bench-infra, ports 39092/39093/35432) and stops them at
    the end. Example: python -m bench --orders 20000 --rate 40
    """
    if bool(bootstrap) != bool(postgres_url):
        raise typer.BadParameter("give both --bootstrap and --postgres-url, or neither")
    # aiokafka logs every retry it makes on its own (a leader not yet elected for a new
    # topic); failures that matter reach the benchmark as exceptions.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    config = resolve_config(
        smoke=smoke,
        quick=quick,
        skip=[phase.value for phase in skip or []],
        overrides={
            "orders": orders,
            "rate": rate,
            "main_seconds": main_seconds,
            "warmup": warmup,
            "step_seconds": step_seconds,
            "start_rate": start_rate,
            "search_budget_seconds": search_budget,
            "pause_seconds": pause_seconds,
            "pause_service": pause_service.value if pause_service else None,
            "scale_service": scale_service.value if scale_service else None,
            "replicas": tuple(replicas) if replicas else None,
            "partitions": partitions,
            "baseline_seconds": baseline_seconds,
            "baseline_messages": baseline_messages,
            "trace_ratio": trace_ratio,
            "service_env": parse_environment(service_env or []) or None,
            "log_dir": log_dir,
        },
    )
    local = LocalInstance(state_dir.resolve(), kafka_port, kafka_controller_port, pg_port)
    try:
        result = asyncio.run(
            _run(
                config,
                bootstrap=bootstrap,
                postgres_url=postgres_url,
                local=local,
                keep_infra=keep_infra,
            )
        )
    except (BenchError, ServiceFailed, MailSinkFailed) as failure:
        console.print(f"[red]benchmark failed:[/red] {failure}")
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("interrupted; every process the benchmark started has been stopped")
        raise typer.Exit(130) from None
    report.write(result, report_path)
    report.render(result, console)
    console.print(f"report: {report_path}")


async def _run(
    config: BenchConfig,
    *,
    bootstrap: str | None,
    postgres_url: str | None,
    local: LocalInstance,
    keep_infra: bool,
) -> dict[str, Any]:
    # SIGTERM ends the run as Ctrl-C does: every process it started is stopped.
    current = asyncio.current_task()
    assert current is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, current.cancel)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("finished, {task.fields[sent]} sent"),
        TimeElapsedColumn(),
        console=console,
    )
    try:
        with progress:
            if not (bootstrap and postgres_url):
                progress.console.log(f"starting Kafka and PostgreSQL in {local.state_dir}")
            async with provided(
                bootstrap=bootstrap, postgres_url=postgres_url, local=local, keep=keep_infra
            ) as infrastructure:
                return await Bench(config, infrastructure, progress).run()
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)
