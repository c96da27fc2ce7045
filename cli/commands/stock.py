"""`oms stock`: stock levels, supplier receipts and corrections."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands.common import JsonFlag, details
from cli.http import call
from cli.render import table
from cli.session import Session, operator_session

app = typer.Typer(help="Read stock levels, book supplier deliveries in, correct counts.")

SkuArgument = Annotated[str, typer.Argument(help="The SKU, e.g. LAMP-ARC")]
WarehouseArgument = Annotated[str, typer.Argument(help="The warehouse id, e.g. wh-paris")]
PAGE_SIZE = 500


@app.command("show")
def show_stock(
    context: typer.Context,
    sku: Annotated[
        str | None, typer.Argument(help="Only this SKU (per warehouse, with its threshold)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Without a SKU: at most this many rows")] = 200,
    json_flag: JsonFlag = False,
) -> None:
    """Stock on hand, reserved for orders, and available to sell: of one SKU per
    warehouse, or of every SKU.

    Example: oms stock show LAMP-ARC
    """
    with operator_session(context, json_flag) as session:
        if sku is not None:
            _show_sku(session, sku)
            return
        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None and len(rows) < limit:
            page = call(
                session,
                "inventory",
                "GET",
                "/stock",
                params={"offset": offset, "limit": min(PAGE_SIZE, limit - len(rows))},
            ).body
            rows.extend(page["items"])
            offset = page.get("next_offset")
        if session.json_mode:
            session.out.json({"items": rows, "next_offset": offset})
            return
        session.out.console.print(
            table(
                f"Stock ({len(rows)} rows)",
                ("sku", "warehouse", "on hand", "reserved", "available"),
                (
                    (r["sku"], r["warehouse_id"], r["on_hand"], r["reserved"], r["available"])
                    for r in rows
                ),
            )
        )
        if offset is not None:
            session.out.note(f"More rows follow; raise --limit above {limit} to see them.")


def _show_sku(session: Session, sku: str) -> None:
    stock = call(session, "inventory", "GET", f"/stock/{sku}").body
    if session.json_mode:
        session.out.json(stock)
        return
    console = session.out.console
    console.print(
        details(
            [
                ("SKU", stock["sku"]),
                ("On hand", stock["on_hand"]),
                ("Reserved", stock["reserved"]),
                ("Available", stock["available"]),
                ("Low-stock threshold", stock["threshold"]),
            ]
        )
    )
    console.print(
        table(
            "Per warehouse",
            ("warehouse", "on hand", "reserved", "available"),
            (
                (w["warehouse_id"], w["on_hand"], w["reserved"], w["available"])
                for w in stock["warehouses"]
            ),
        )
    )


def _print_change(session: Session, change: dict[str, Any], done: str) -> None:
    if session.json_mode:
        session.out.json(change)
        return
    if change.get("duplicate"):
        session.out.note("This reference was booked before: nothing changed.", style="yellow")
    else:
        session.out.note(done, style="green")
    session.out.console.print(
        table(
            None,
            ("sku", "warehouse", "on hand", "reserved", "available"),
            [
                (
                    change["sku"],
                    change["warehouse_id"],
                    change["on_hand"],
                    change["reserved"],
                    change["available"],
                )
            ],
        )
    )


@app.command("receive")
def receive_stock(
    context: typer.Context,
    sku: SkuArgument,
    warehouse: WarehouseArgument,
    quantity: Annotated[int, typer.Argument(min=1, help="Units received")],
    reference: Annotated[
        str,
        typer.Option(
            help="The supplier delivery's reference: booking it again changes nothing",
            show_default=False,
        ),
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Book a supplier delivery into a warehouse. Running it again with the same
    reference is harmless (nothing is booked twice).

    Example: oms stock receive LAMP-ARC wh-paris 40 --reference PO-2025-118
    """
    with operator_session(context, json_flag) as session:
        change = call(
            session,
            "inventory",
            "POST",
            "/stock/receipts",
            body={
                "sku": sku,
                "warehouse_id": warehouse,
                "quantity": quantity,
                "reference": reference,
            },
        ).body
        _print_change(session, change, f"Received {quantity} x {sku} into {warehouse}.")


@app.command(
    "adjust",
    # Lets a negative DELTA such as -3 through as an argument rather than an option.
    context_settings={"ignore_unknown_options": True},
)
def adjust_stock(
    context: typer.Context,
    sku: SkuArgument,
    warehouse: WarehouseArgument,
    delta: Annotated[int, typer.Argument(help="Units to add, or to remove when negative")],
    reason: Annotated[str, typer.Option(help="Why the count changes", show_default=False)],
    reference: Annotated[
        str | None,
        typer.Option(help="Makes running the same adjustment again change nothing"),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Correct the on-hand count after a stock take or damage. Refused (exit code 1)
    when it would leave less on hand than is reserved for orders.

    Example: oms stock adjust LAMP-ARC wh-paris -3 --reason "broken in the warehouse"
    """
    if delta == 0:
        raise typer.BadParameter("must not be 0", param_hint="DELTA")
    with operator_session(context, json_flag) as session:
        change = call(
            session,
            "inventory",
            "POST",
            "/stock/adjustments",
            body={
                "sku": sku,
                "warehouse_id": warehouse,
                "delta": delta,
                "reason": reason,
                "reference": reference,
            },
        ).body
        _print_change(session, change, f"Adjusted {sku} in {warehouse} by {delta:+d}.")
