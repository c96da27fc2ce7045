"""`python -m adapters.csv_import FILE`: imports a marketplace's CSV order feed.

The parsing, grouping and checks are in `adapters.marketplace_feed` (pure); this module
is the command: it reads the file, publishes the good orders with a progress bar, writes
the rejected rows out with their reasons, and says what happened.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.marketplace_feed import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Feed,
    UnusableFeed,
    parse_feed,
    write_rejected,
)
from adapters.publisher import ChannelPublisher, Outcome
from contracts.events.common import Channel


class Exit(IntEnum):
    ALL_ACCEPTED = 0
    SOME_REJECTED = 1
    UNUSABLE_INPUT = 2
    NOT_PUBLISHED = 3


HELP = f"""Import a marketplace CSV order feed: publish every valid order on the inbound
topic (oms.channel.orders.v1) and write the rejected rows, with the reason, to a CSV.

One row per order line; rows with the same external_order_id make one order. Columns:
{", ".join(REQUIRED_COLUMNS)}; optional: {", ".join(OPTIONAL_COLUMNS)}.
Amounts are decimals such as 19.99; line totals, subtotal and total are computed.

Running it again on the same file is safe: the order service places each
(channel, external_order_id) once, so orders already imported are not doubled.

Exit codes: 0 every order accepted; 1 some rows rejected (see the rejected file);
2 unusable input (no such file, not UTF-8, required columns missing);
3 the broker did not take every valid order (run the same command again).

"Accepted" means the broker acknowledged the order. The order service can still
reject it (an unknown SKU, say); it then shows as status "rejected" in
GET /orders?channel=<channel>&status=rejected on the order service.
"""

app = typer.Typer(add_completion=False, help=HELP, rich_markup_mode=None)
err = Console(stderr=True)
out = Console()


@app.command(help=HELP)
def main(
    file: Annotated[Path, typer.Argument(help="The CSV feed (UTF-8, comma-separated).")],
    channel: Annotated[
        str, typer.Option(help="Channel name the orders are submitted under.")
    ] = "marketplace",
    rejected_out: Annotated[
        Path | None,
        typer.Option(help="Where to write rejected rows. [default: FILE.rejected.csv]"),
    ] = None,
    bootstrap: Annotated[
        str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
    ] = "127.0.0.1:9092",
    namespace: Annotated[
        str, typer.Option(envvar="OMS_TOPIC_NAMESPACE", help="Topic namespace (prefix).")
    ] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the feed and report; publish nothing.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the broker per order.", min=0.1)
    ] = 30.0,
) -> None:
    try:
        TypeAdapter(Channel).validate_python(channel)
    except ValidationError:
        _unusable(f"--channel {channel!r}: lowercase letters, digits, - and _ (at most 32)")
    # aiokafka logs each failed connection attempt; the summary reports the failure once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    feed = _read(file, channel)
    rejected_path = rejected_out or file.with_name(f"{file.stem}.rejected.csv")
    if feed.ignored_columns:
        err.print(f"[yellow]Ignored columns:[/] {', '.join(feed.ignored_columns)}")
    outcomes: list[Outcome] = []
    if feed.orders and not dry_run:
        outcomes = asyncio.run(_publish(feed, bootstrap, namespace, channel, timeout))
    if feed.rejected:
        with rejected_path.open("w", newline="", encoding="utf-8") as stream:
            write_rejected(stream, feed.columns, feed.rejected)
    raise typer.Exit(_report(feed, outcomes, rejected_path, dry_run=dry_run))


def _read(file: Path, channel: str) -> Feed:
    try:
        with file.open(newline="", encoding="utf-8-sig") as stream:
            return parse_feed(stream, channel=channel, submitted_at=datetime.now(UTC))
    except FileNotFoundError:
        _unusable(f"no such file: {file}")
    except IsADirectoryError:
        _unusable(f"{file} is a directory, not a CSV file")
    except UnicodeDecodeError as error:
        _unusable(f"{file} is not UTF-8 text (byte {error.start}): save the feed as UTF-8")
    except UnusableFeed as error:
        _unusable(f"{file}: {error}")


def _unusable(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(Exit.UNUSABLE_INPUT)


async def _publish(
    feed: Feed, bootstrap: str, namespace: str, channel: str, timeout_seconds: float
) -> list[Outcome]:
    publisher = ChannelPublisher(
        bootstrap,
        source=f"/{channel}",
        namespace=namespace,
        timeout_seconds=timeout_seconds,
        client_id=f"oms-{channel}-csv-import",
    )
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err) as progress:
            task = progress.add_task(f"Publishing to {publisher.topic}", total=len(feed.orders))
            return await publisher.publish_many(
                (order.order for order in feed.orders),
                on_outcome=lambda _outcome: progress.advance(task),
            )
    finally:
        await publisher.stop()


def _report(feed: Feed, outcomes: list[Outcome], rejected_path: Path, *, dry_run: bool) -> Exit:
    failed = [outcome for outcome in outcomes if not outcome.accepted]
    orders_accepted = 0 if dry_run else len(feed.orders) - len(failed)
    rows_failed = sum(len(feed.orders[outcome.index].rows) for outcome in failed)
    rows_accepted = 0 if dry_run else feed.rows_accepted - rows_failed

    table = Table(title="Dry run: nothing published" if dry_run else "Import summary")
    for heading in ("", "orders", "rows"):
        table.add_column(heading, justify="right" if heading else "left")
    if dry_run:
        table.add_row("valid", str(len(feed.orders)), str(feed.rows_accepted))
    else:
        table.add_row("accepted", str(orders_accepted), str(rows_accepted))
    table.add_row("rejected", str(feed.orders_rejected), str(len(feed.rejected)))
    if failed:
        table.add_row("not sent", str(len(failed)), str(rows_failed))
    out.print(table)

    for item in feed.rejected[:10]:
        out.print(f"line {item.row.line}: {item.reason}", markup=False, highlight=False)
    if len(feed.rejected) > 10:
        out.print(f"… and {len(feed.rejected) - 10} more rejected rows")
    if feed.rejected:
        out.print(f"Rejected rows, with the reason: {rejected_path}", markup=False)
    if failed:
        out.print(f"Not sent: {failed[0].error}", markup=False)
        out.print("Run the same command again: orders already imported are not doubled.")
        return Exit.NOT_PUBLISHED
    return Exit.SOME_REJECTED if feed.rejected else Exit.ALL_ACCEPTED


if __name__ == "__main__":
    app()
