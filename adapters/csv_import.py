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


HELP = """Import a marketplace CSV order feed: publish every valid order on the inbound
topic (oms.channel.orders.v1) and write the rejected rows, with the reason, to a CSV.

One row per order line; rows with the same external_order_id make one order.
Columns by name, in any order; an optional one may be left out or left empty.
Amounts are decimals in the order's currency, such as 19.99.

\b
Order columns (the same on every row of the order):
  external_order_id, currency (ISO 4217), customer_name      required
  customer_id, customer_email   optional (no e-mail: no order e-mail is sent)
  locale                        default en
  ship_name, ship_line1, ship_country (ISO 3166 alpha-2)     required
  ship_line2, ship_city, ship_region, ship_postal_code       optional (Hong
                                Kong, say, has no postcode)
  shipping_speed                standard (default), express, next_day
  shipping_charge               default 0
  bill_name, bill_line1, bill_country, bill_line2, bill_city, bill_region,
  bill_postal_code              billing address, optional; name, line1 and
                                country needed once any bill_ column is given
  taxes_included                true (prices include tax) or false (default)
  order_discount                amount off the goods, shared across the lines
  order_discount_code           the code entered (kind code; else manual)
  order_discount_title          default: the code, else "Order discount"
  shipping_title                default "Shipping"; given, this or any
                                shipping_ column below sends a shipping line
  shipping_discount, shipping_discount_code, shipping_discount_title
                                as the order's; default "Shipping discount"
  shipping_tax_rate, shipping_tax_amount, shipping_tax_title   as a line's
  notes                         the customer's notes
  financial_status              paid, pending...; needed with any payment_
  payment_gateway, payment_terms (such as Net 30), payment_due_in_days
                                (needs payment_terms)

\b
Line columns:
  sku, quantity (a positive whole number), unit_price        required
  title                         the product's name
  line_discount                 amount off this line, in all
  line_discount_code            the code entered (kind code; else manual)
  line_discount_title           default: the code, else "Line discount"
  tax_rate                      a decimal fraction: 0.2 is 20 %
  tax_amount                    needs tax_rate; computed from it when empty
  tax_title                     default "Tax"

\b
Computed, in minor units:
  line_total       = unit_price x quantity; subtotal = sum of line_total
  order discount   shared in proportion to each line's line_total -
                   line_discount, rounded down; the units left over go one
                   each to the lines that lost most to rounding
  discounted_total = line_total - line_discount - its order discount share
  shipping line    price = shipping_charge;
                   discounted_price = price - shipping_discount
  tax from a rate  on the amount after discounts, rounded half up:
                   amount x rate, or amount x rate / (1 + rate) when
                   taxes_included (the tax inside the price)
  total_discounts  = line, order and shipping discounts
  total_tax        = line and shipping taxes
  total            = subtotal - total_discounts + shipping_charge
                     + (0 if taxes_included else total_tax)
An order without any discount or tax column is sent as before: without
discounted_total, total_discounts and total_tax.

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
