"""`oms returns`: return requests (RMAs), their approval and the parcel's inspection."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands.common import JsonFlag, details, status_text
from cli.http import call
from cli.parsing import (
    RETURN_REASONS,
    ReceivedLine,
    ReturnLine,
    parse_received_line,
    parse_return_line,
)
from cli.render import money, table, when
from cli.session import CliFailure, ExitCode, Session, operator_session

app = typer.Typer(help="Request, approve, receive and read returns (RMAs).", no_args_is_help=True)

ReturnIdArgument = Annotated[str, typer.Argument(help="The return id, e.g. rma_01J8Z9")]


def _show(session: Session, rma: dict[str, Any]) -> None:
    if session.json_mode:
        session.out.json(rma)
        return
    console = session.out.console
    refund = rma.get("refund")
    console.print(
        details(
            [
                ("Return", rma.get("return_id")),
                ("Order", rma.get("order_id")),
                ("Status", status_text(rma.get("status"))),
                ("Requested", when(rma.get("requested_at"))),
                ("Label", rma.get("label_reference")),
                ("Received at", rma.get("receiving_warehouse_id")),
                (
                    "Refund",
                    f"{money(_money_of_refund(refund))} "
                    f"({refund.get('refund_id')}, {refund.get('policy')})"
                    if refund
                    else None,
                ),
            ]
        )
    )
    console.print(
        table(
            "Requested",
            ("sku", "qty", "reason"),
            ((line["sku"], line["quantity"], line["reason_code"]) for line in rma.get("lines", [])),
        )
    )
    if rma.get("received"):
        console.print(
            table(
                "Received",
                ("sku", "qty", "restockable", "note"),
                (
                    (line["sku"], line["quantity"], line["restockable_quantity"], line.get("note"))
                    for line in rma["received"]
                ),
            )
        )
    if rma.get("rejection_reasons"):
        console.print(
            table(
                "Rejected because",
                ("code", "field", "message"),
                (
                    (r.get("code"), r.get("field"), r.get("message"))
                    for r in rma["rejection_reasons"]
                ),
            )
        )


def _money_of_refund(refund: dict[str, Any]) -> dict[str, Any]:
    return {"amount_minor": refund.get("amount_minor"), "currency": refund.get("currency")}


@app.command("request")
def request_return(
    context: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The shipped order's id")],
    lines: Annotated[
        list[ReturnLine],
        typer.Option(
            "--line",
            parser=parse_return_line,
            metavar="SKU:QTY:REASON",
            help=f"What comes back and why; repeat per SKU. REASON: {', '.join(RETURN_REASONS)}",
            show_default=False,
        ),
    ],
    json_flag: JsonFlag = False,
) -> None:
    """Ask to return units of a shipped order. The returns service checks the request at
    once: when it fails the check (not shipped, more than was shipped, past the return
    window) the return is recorded as rejected and the command exits with code 1.

    Example: oms returns request ord_01J8Z6Q3 --line LAMP-ARC:1:damaged
    """
    with operator_session(context, json_flag) as session:
        rma = call(
            session,
            "returns",
            "POST",
            "/returns",
            body={"order_id": order_id, "lines": [line.as_body() for line in lines]},
        ).body
        if rma.get("status") != "rejected":
            _show(session, rma)
            return
        # Recorded, but refused: exit code 1, with the return in the error document so
        # that JSON mode still prints exactly one document.
        if not session.json_mode:
            _show(session, rma)
        raise CliFailure(
            ExitCode.REFUSED,
            "the return was rejected: "
            + "; ".join(str(r.get("message")) for r in rma.get("rejection_reasons", [])),
            detail={"code": "return_rejected", "return": rma},
        )


@app.command("approve")
def approve_return(
    context: typer.Context, return_id: ReturnIdArgument, json_flag: JsonFlag = False
) -> None:
    """Approve a requested return and issue its shipping label.

    Example: oms returns approve rma_01J8Z9
    """
    with operator_session(context, json_flag) as session:
        _show(session, call(session, "returns", "POST", f"/returns/{return_id}/approve").body)


@app.command("receive")
def receive_return(
    context: typer.Context,
    return_id: ReturnIdArgument,
    lines: Annotated[
        list[ReceivedLine],
        typer.Option(
            "--line",
            parser=parse_received_line,
            metavar="SKU:QTY:RESTOCKABLE",
            help="What arrived and how many units of it can be sold again; repeat per SKU",
            show_default=False,
        ),
    ],
    warehouse: Annotated[
        str | None,
        typer.Option(
            help="Warehouse that received the parcel (by default the one the SKUs shipped from)"
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Record the returned parcel and its inspection: restockable units go back on sale,
    the return is settled and the refund issued.

    Example: oms returns receive rma_01J8Z9 --line LAMP-ARC:1:0
    """
    with operator_session(context, json_flag) as session:
        _show(
            session,
            call(
                session,
                "returns",
                "POST",
                f"/returns/{return_id}/receive",
                body={
                    "warehouse_id": warehouse,
                    "lines": [line.as_body() for line in lines],
                },
            ).body,
        )


@app.command("show")
def show_return(
    context: typer.Context, return_id: ReturnIdArgument, json_flag: JsonFlag = False
) -> None:
    """One return: its lines, status, what was received and the refund.

    Example: oms returns show rma_01J8Z9
    """
    with operator_session(context, json_flag) as session:
        _show(session, call(session, "returns", "GET", f"/returns/{return_id}").body)
