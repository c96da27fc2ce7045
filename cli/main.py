"""`oms`: the operators' command line. It talks to the five services over their HTTP
APIs and reads and replays dead letters on Kafka; it imports no service code."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands import dead_letters, orders, returns, shipments, stock
from cli.commands.common import JsonFlag, status_text
from cli.http import call
from cli.render import table
from cli.session import (
    DEFAULT_PORTS,
    EXIT_CODES_HELP,
    SERVICES,
    CliFailure,
    ExitCode,
    Settings,
    operator_session,
)

app = typer.Typer(
    name="oms",
    help=(
        "Operate the order management system: orders, stock, shipments, returns and "
        "dead letters.\n\n"
        "Start with `oms status` to check that every service answers, then e.g. "
        "`oms orders list --status confirmed`. Every command has --help with an example "
        "and --json for scripts.\n\n"
        "Service addresses and the Kafka cluster come from the options below or from "
        "their environment variables; the defaults match `make up`.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(orders.app, name="orders")
app.add_typer(stock.app, name="stock")
app.add_typer(shipments.app, name="shipments")
app.add_typer(returns.app, name="returns")
app.add_typer(dead_letters.app, name="dead-letters")


def _url_option(service: str) -> Any:
    return typer.Option(
        f"--{service}-url",
        envvar=f"OMS_{service.upper()}_URL",
        help=f"Base URL of the {service} service",
        rich_help_panel="Where the system is",
    )


@app.callback()
def main(
    context: typer.Context,
    order_url: Annotated[str, _url_option("order")] = f"http://127.0.0.1:{DEFAULT_PORTS['order']}",
    inventory_url: Annotated[
        str, _url_option("inventory")
    ] = f"http://127.0.0.1:{DEFAULT_PORTS['inventory']}",
    fulfilment_url: Annotated[
        str, _url_option("fulfilment")
    ] = f"http://127.0.0.1:{DEFAULT_PORTS['fulfilment']}",
    returns_url: Annotated[
        str, _url_option("returns")
    ] = f"http://127.0.0.1:{DEFAULT_PORTS['returns']}",
    notification_url: Annotated[
        str, _url_option("notification")
    ] = f"http://127.0.0.1:{DEFAULT_PORTS['notification']}",
    kafka: Annotated[
        str,
        typer.Option(
            "--kafka",
            envvar="KAFKA_BOOTSTRAP_SERVERS",
            help="Kafka bootstrap servers (for dead letters)",
            rich_help_panel="Where the system is",
        ),
    ] = "127.0.0.1:9092",
    namespace: Annotated[
        str,
        typer.Option(
            envvar="OMS_TOPIC_NAMESPACE",
            help="Topic namespace the services run in: topics are <namespace>.<name>",
            rich_help_panel="Where the system is",
        ),
    ] = "",
    timeout: Annotated[
        float,
        typer.Option(
            envvar="OMS_HTTP_TIMEOUT",
            min=0.1,
            help="Seconds to wait for a service's answer",
            rich_help_panel="Where the system is",
        ),
    ] = 10.0,
    json_flag: JsonFlag = False,
) -> None:
    context.obj = Settings(
        urls={
            "order": order_url,
            "inventory": inventory_url,
            "fulfilment": fulfilment_url,
            "returns": returns_url,
            "notification": notification_url,
        },
        kafka_bootstrap_servers=kafka,
        namespace=namespace,
        json_output=json_flag,
        http_timeout=timeout,
    )


@app.command("status")
def status(context: typer.Context, json_flag: JsonFlag = False) -> None:
    """Whether each service answers its health check. Exit code 4 when any does not.

    Example: oms status
    """
    with operator_session(context, json_flag) as session:
        health: dict[str, dict[str, object]] = {}
        for service in SERVICES:
            try:
                call(session, service, "GET", "/health")
                health[service] = {"url": session.settings.url(service), "healthy": True}
            except CliFailure as failure:
                health[service] = {
                    "url": session.settings.url(service),
                    "healthy": False,
                    "error": failure.message,
                }
        unhealthy = [service for service, state in health.items() if not state["healthy"]]
        if not session.json_mode:
            session.out.console.print(
                table(
                    "Services",
                    ("service", "url", "state"),
                    (
                        (
                            service,
                            state["url"],
                            status_text("healthy" if state["healthy"] else "failed"),
                        )
                        for service, state in health.items()
                    ),
                )
            )
        if unhealthy:
            raise CliFailure(
                ExitCode.UNREACHABLE,
                f"not answering: {', '.join(unhealthy)}",
                detail={"services": health},
            )
        if session.json_mode:
            session.out.json({"services": health})
