"""`oms orders`: find orders, read one in full, and the customer-service commands."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands.common import JsonFlag, details, status_text
from cli.http import call
from cli.render import (
    EMPTY,
    address,
    money,
    page_of,
    quantities,
    table,
    timeline_rows,
    when,
)
from cli.session import CliFailure, ExitCode, Session, operator_session
from contracts.events.order import CancellationReason

app = typer.Typer(
    help="Find orders, read one in full, cancel one or change where it goes.",
    no_args_is_help=True,
)

ORDER_STATUSES = (
    "placed, confirmed, partially_shipped, shipped, delivered, return_requested, "
    "partially_returned, returned, cancelled, rejected"
)
OrderIdArgument = Annotated[str, typer.Argument(help="The order id, e.g. ord_01J...")]
ActorOption = Annotated[
    str,
    typer.Option(
        "--by",
        help="Who does it: `<role>:<user id>` for staff, e.g. agent:jdoe",
        show_default=False,
    ),
]


@app.command("list")
def list_orders(
    context: typer.Context,
    channel: Annotated[
        str | None, typer.Option(help="Only this sales channel, e.g. webshop")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help=f"Only orders in this status: {ORDER_STATUSES}")
    ] = None,
    customer: Annotated[
        str | None, typer.Option(help="Only this customer's orders (customer id)")
    ] = None,
    external_id: Annotated[
        str | None, typer.Option(help="Only the order with this id in its channel")
    ] = None,
    placed_from: Annotated[
        str | None,
        typer.Option(help="Placed on or after: a date (2026-05-01) or date and time (UTC)"),
    ] = None,
    placed_to: Annotated[
        str | None,
        typer.Option(help="Placed on or before: a date (the whole day) or date and time"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many orders")] = 50,
    cursor: Annotated[
        str | None, typer.Option(help="Next page: the next cursor the previous page printed")
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Orders, newest first, a page at a time.

    Example: oms orders list --status confirmed --placed-from 2026-05-01 --limit 20
    """
    with operator_session(context, json_flag) as session:
        answer = call(
            session,
            "order",
            "GET",
            "/orders",
            params={
                "channel": channel,
                "status": status,
                "customer_id": customer,
                "external_order_id": external_id,
                "placed_from": placed_from,
                "placed_to": placed_to,
                "limit": limit,
                "cursor": cursor,
            },
        )
        try:
            items, next_cursor = page_of(answer.body)
        except ValueError as error:
            raise CliFailure(
                ExitCode.UNREACHABLE, f"the order service answered an unknown shape: {error}"
            ) from None
        if customer is not None:
            # Also applied here: an older order service that ignores the filter must not
            # make the command show other customers' orders.
            items = [item for item in items if item.get("customer_id") == customer]
        if session.json_mode:
            session.out.json({"items": items, "next_cursor": next_cursor})
            return
        session.out.console.print(
            table(
                f"{len(items)} order(s)",
                ("order", "channel", "external id", "status", "customer", "total", "placed"),
                (
                    (
                        item.get("order_id"),
                        item.get("channel"),
                        item.get("external_order_id"),
                        status_text(item.get("status")),
                        item.get("customer_id"),
                        money(item.get("total")),
                        when(item.get("placed_at") or item.get("created_at")),
                    )
                    for item in items
                ),
            )
        )
        if next_cursor:
            session.out.note(f"More orders follow: add --cursor {next_cursor}")


@app.command("show")
def show_order(
    context: typer.Context, order_id: OrderIdArgument, json_flag: JsonFlag = False
) -> None:
    """One order: status, lines, shipments, returns, refunds, notifications, its status
    history and, where the order service provides it, the timeline of its events across
    every service.

    Example: oms orders show ord_01J8Z6Q3
    """
    with operator_session(context, json_flag) as session:
        order = call(session, "order", "GET", f"/orders/{order_id}").body
        if session.json_mode:
            session.out.json(order)
            return
        render_order(session, order)


def _total(order: dict[str, Any]) -> str:
    """What the customer pays and how it adds up (the contract's formula)."""
    if order.get("total") is None:
        return EMPTY
    parts = [f"goods {money(order.get('subtotal'))}"]
    discounts = order.get("total_discounts") or {}
    if discounts.get("amount_minor"):
        parts.append(f"discounts -{money(discounts)}")
    parts.append(f"shipping {money(order.get('shipping_charge'))}")
    parts += [
        f"{charge.get('title')} {money(charge.get('amount'))}"
        for charge in order.get("charges") or []
    ]
    tax = order.get("total_tax") or {}
    if tax.get("amount_minor"):
        parts.append(f"tax {money(tax)} {'included' if order.get('taxes_included') else 'added'}")
    return f"{money(order.get('total'))} ({', '.join(parts)})"


def _ship_to(order: dict[str, Any]) -> str:
    if order.get("shipping_address") is None and order.get("status") != "rejected":
        return "nowhere: collected at the warehouse"
    return address(order.get("shipping_address"))


def _discounts(order: dict[str, Any]) -> str | None:
    listed = [
        f"{discount.get('title')} ({discount.get('kind')})"
        for discount in order.get("discounts") or []
    ]
    return ", ".join(listed) or None


def _sum_of(tax_lines: list[dict[str, Any]] | None, like: dict[str, Any] | None) -> str:
    if not tax_lines or like is None:
        return EMPTY
    total = sum(tax["amount"]["amount_minor"] for tax in tax_lines)
    return money({"amount_minor": total, "currency": like["currency"]})


def render_order(session: Session, order: dict[str, Any]) -> None:
    console = session.out.console
    customer = order.get("customer") or {}
    console.print(
        details(
            [
                ("Order", order.get("order_id")),
                ("Status", status_text(order.get("status"))),
                ("Channel", f"{order.get('channel')} / {order.get('external_order_id')}"),
                ("Customer", _customer(customer)),
                ("Placed", f"{when(order.get('placed_at'))} by {order.get('placed_by') or EMPTY}"),
                ("Total", _total(order)),
                ("Discounts", _discounts(order)),
                ("Ship to", _ship_to(order)),
                ("Speed", order.get("shipping_speed")),
                ("Reservation", order.get("reservation_id")),
                ("Final status", order.get("final_status")),
                ("Notes", order.get("notes")),
            ]
        )
    )
    reasons = order.get("rejection_reasons") or []
    if reasons:
        console.print(
            table(
                "Rejected because",
                ("code", "field", "message"),
                ((r.get("code"), r.get("field"), r.get("message")) for r in reasons),
            )
        )
    shipped = order.get("shipped_quantities") or {}
    returned = order.get("returned_quantities") or {}
    console.print(
        table(
            "Lines",
            (
                "line",
                "sku",
                "qty",
                "unit price",
                "total",
                "after discounts",
                "tax",
                "shipped",
                "returned",
            ),
            (
                (
                    line.get("line_id"),
                    line.get("sku"),
                    line.get("quantity"),
                    money(line.get("unit_price")),
                    money(line.get("line_total")),
                    money(line.get("discounted_total")),
                    _sum_of(line.get("tax_lines"), line.get("unit_price")),
                    shipped.get(line.get("sku"), 0),
                    returned.get(line.get("sku"), 0),
                )
                for line in order.get("lines") or []
            ),
        )
    )
    _section(
        session,
        "Shipments",
        order.get("shipments"),
        ("shipment", "status", "warehouse", "carrier", "tracking", "units", "shipped", "delivered"),
        lambda s: (
            s.get("shipment_id"),
            status_text(s.get("status")),
            s.get("warehouse_id"),
            s.get("carrier"),
            s.get("tracking_number"),
            quantities(s.get("shipped_lines") or s.get("planned_lines")),
            when(s.get("shipped_at")),
            when(s.get("delivered_at")),
        ),
    )
    _section(
        session,
        "Returns",
        order.get("returns"),
        ("return", "requested", "requested at", "returned", "returned at", "rejected at"),
        lambda r: (
            r.get("return_id"),
            ", ".join(
                f"{line.get('quantity')} x {line.get('sku')} ({line.get('reason_code')})"
                for line in r.get("requested_lines") or []
            ),
            when(r.get("requested_at")),
            quantities(r.get("returned_lines")),
            when(r.get("returned_at")),
            when(r.get("rejected_at")),
        ),
    )
    _section(
        session,
        "Refunds",
        order.get("refunds"),
        ("refund", "return", "amount", "of which shipping", "policy", "issued"),
        lambda r: (
            r.get("refund_id"),
            r.get("return_id"),
            money(r.get("amount")),
            money(r.get("shipping_refunded")),
            r.get("policy"),
            when(r.get("issued_at")),
        ),
    )
    _section(
        session,
        "Notifications sent",
        order.get("notifications"),
        ("sent", "template", "channel", "recipient"),
        lambda n: (when(n.get("sent_at")), n.get("template"), n.get("channel"), n.get("recipient")),
    )
    _section(
        session,
        "Status history",
        order.get("status_history"),
        ("at", "from", "to", "by", "cause"),
        lambda change: (
            when(change.get("at")),
            change.get("from_status"),
            status_text(change.get("to_status")),
            change.get("actor"),
            change.get("command") or change.get("cause_event_id"),
        ),
    )
    if "timeline" in order:
        _section(
            session,
            "Timeline",
            timeline_rows(order.get("timeline")),
            ("at", "source", "what", "details"),
            lambda row: row,
        )


def _customer(customer: dict[str, Any]) -> str | None:
    if not customer:
        return None
    return f"{customer.get('name')} <{customer.get('email')}> ({customer.get('customer_id')})"


def _section(
    session: Session,
    title: str,
    items: Any,
    columns: tuple[str, ...],
    row: Any,
) -> None:
    if not items:
        session.out.console.print(f"{title}: none", style="dim", markup=False)
        return
    session.out.console.print(table(title, columns, (row(item) for item in items)))


@app.command("cancel")
def cancel_order(
    context: typer.Context,
    order_id: OrderIdArgument,
    reason: Annotated[CancellationReason, typer.Option(help="Why the order is cancelled")],
    by: ActorOption,
    note: Annotated[str | None, typer.Option(help="Free text kept with the order")] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Cancel an order before anything has shipped. Its stock is released and the
    customer is told. Refused (exit code 1) once a shipment has left, or when the order
    is cancelled already.

    Example: oms orders cancel ord_01J8Z6Q3 --reason customer_request --by agent:jdoe
    """
    with operator_session(context, json_flag) as session:
        order = call(
            session,
            "order",
            "POST",
            f"/orders/{order_id}/cancel",
            body={"reason": reason.value, "cancelled_by": by, "note": note},
        ).body
        if session.json_mode:
            session.out.json(order)
            return
        session.out.console.print(
            details(
                [("Order", order.get("order_id")), ("Status", status_text(order.get("status")))]
            )
        )


@app.command("change-address")
def change_address(
    context: typer.Context,
    order_id: OrderIdArgument,
    name: Annotated[str, typer.Option(help="Recipient name")],
    line1: Annotated[str, typer.Option(help="Street and number")],
    city: Annotated[str, typer.Option(help="City or town")],
    postal_code: Annotated[str, typer.Option(help="Postal code")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 code, e.g. FR")],
    by: ActorOption,
    line2: Annotated[str | None, typer.Option(help="Building, floor, apartment")] = None,
    region: Annotated[str | None, typer.Option(help="State, province or county")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number for the carrier")] = None,
    json_flag: JsonFlag = False,
) -> None:
    r"""Change where an order goes, before anything has shipped (refused with exit code
    1 afterwards). Shipments not yet collected follow the new address.

    Example:

    oms orders change-address ord_01J8Z6Q3 --name "Ada Lovelace" \
      --line1 "12 rue de la Paix" --city Paris --postal-code 75002 --country FR \
      --by agent:jdoe
    """
    shipping_address = {
        "name": name,
        "line1": line1,
        "line2": line2,
        "city": city,
        "postal_code": postal_code,
        "region": region,
        "country": country,
        "phone": phone,
    }
    with operator_session(context, json_flag) as session:
        order = call(
            session,
            "order",
            "POST",
            f"/orders/{order_id}/shipping-address",
            body={
                "shipping_address": {k: v for k, v in shipping_address.items() if v is not None},
                "changed_by": by,
            },
        ).body
        if session.json_mode:
            session.out.json(order)
            return
        session.out.console.print(
            details(
                [
                    ("Order", order.get("order_id")),
                    ("Status", status_text(order.get("status"))),
                    ("Ship to", _ship_to(order)),
                ]
            )
        )
