"""`oms shipments`: an order's shipments and the warehouse and carrier steps."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands.common import JsonFlag, details, status_text
from cli.http import call
from cli.render import quantities, table, when
from cli.session import Session, operator_session

app = typer.Typer(
    help="List an order's shipments; record picking, packing, collection and delivery.",
    no_args_is_help=True,
)

ShipmentIdArgument = Annotated[
    str, typer.Argument(help="The shipment id (see `oms shipments list ORDER_ID`)")
]


def _show(session: Session, shipment: dict[str, Any]) -> None:
    if session.json_mode:
        session.out.json(shipment)
        return
    session.out.console.print(
        details(
            [
                ("Shipment", shipment.get("shipment_id")),
                ("Order", shipment.get("order_id")),
                ("Status", status_text(shipment.get("status"))),
                ("Warehouse", shipment.get("warehouse_id")),
                ("Carrier", f"{shipment.get('carrier')} ({shipment.get('shipping_method')})"),
                ("Tracking", shipment.get("tracking_number")),
                ("Units", quantities(shipment.get("lines"))),
            ]
        )
    )


@app.command("list")
def list_shipments(
    context: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order id")],
    json_flag: JsonFlag = False,
) -> None:
    """The shipments of an order (one per warehouse the order ships from).

    Example: oms shipments list ord_01J8Z6Q3
    """
    with operator_session(context, json_flag) as session:
        shipments = call(
            session, "fulfilment", "GET", "/shipments", params={"order_id": order_id}
        ).body
        if session.json_mode:
            session.out.json({"items": shipments})
            return
        session.out.console.print(
            table(
                f"Shipments of {order_id}",
                ("shipment", "status", "warehouse", "carrier", "tracking", "units", "created"),
                (
                    (
                        s.get("shipment_id"),
                        status_text(s.get("status")),
                        s.get("warehouse_id"),
                        s.get("carrier"),
                        s.get("tracking_number"),
                        quantities(s.get("lines")),
                        when(s.get("created_at")),
                    )
                    for s in shipments
                ),
            )
        )


@app.command("pick")
def pick(
    context: typer.Context, shipment_id: ShipmentIdArgument, json_flag: JsonFlag = False
) -> None:
    """The warehouse picked the shipment's units off the shelves. Refused (exit code 1)
    when already picked or cancelled.

    Example: oms shipments pick shp_01J8Z7AB
    """
    with operator_session(context, json_flag) as session:
        _show(session, call(session, "fulfilment", "POST", f"/shipments/{shipment_id}/pick").body)


@app.command("pack")
def pack(
    context: typer.Context,
    shipment_id: ShipmentIdArgument,
    weight: Annotated[
        list[int] | None,
        typer.Option(
            "--weight",
            min=1,
            help="Weight in grams of one parcel; repeat for several parcels "
            "(by default the warehouse's estimate)",
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """The warehouse packed the picked shipment into parcels.

    Example: oms shipments pack shp_01J8Z7AB --weight 1250 --weight 800
    """
    body = {"packages": [{"weight_grams": grams} for grams in weight]} if weight else None
    with operator_session(context, json_flag) as session:
        _show(
            session,
            call(session, "fulfilment", "POST", f"/shipments/{shipment_id}/pack", body=body).body,
        )


@app.command("ship")
def ship(
    context: typer.Context, shipment_id: ShipmentIdArgument, json_flag: JsonFlag = False
) -> None:
    """The carrier collected the packed shipment; it gets its tracking number and the
    customer is told.

    Example: oms shipments ship shp_01J8Z7AB
    """
    with operator_session(context, json_flag) as session:
        _show(session, call(session, "fulfilment", "POST", f"/shipments/{shipment_id}/ship").body)


@app.command("deliver")
def deliver(
    context: typer.Context,
    tracking_number: Annotated[str, typer.Argument(help="The carrier's tracking number")],
    json_flag: JsonFlag = False,
) -> None:
    """Record the carrier's report that a parcel was delivered (as the carrier's tracking
    webhook would). Reporting it again changes nothing.

    Example: oms shipments deliver TRK-4F9A22
    """
    with operator_session(context, json_flag) as session:
        _show(
            session,
            call(
                session,
                "fulfilment",
                "POST",
                "/carrier/tracking",
                body={"tracking_number": tracking_number, "status": "delivered"},
            ).body,
        )
