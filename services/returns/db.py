"""The returns service's tables and the small queries the commands on returns make over
them (consumed order facts are written a batch at a time by `batch_state`).

Order facts arrive from two topics in any order, so each kind has its own table: an
`orders` row exists once OrderPlaced or Shipped was seen (its placement columns fill in
when OrderPlaced arrives), and deliveries are kept apart from shipments. Every command on
the returns of an order first locks that order's row, so concurrent requests and receipts
of one order see each other's effects.

Money is kept as what was paid, tax included, with the tax within (`*_paid_minor` or
`amount_minor`, and `*tax_minor`). Orders stored before paid amounts were kept were
migrated to paid = unit price * quantity with no tax, and their shipping to the shipping
charge: what was refunded for them then.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    Update,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.returns import domain

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("currency", String(3)),
    Column("shipping_paid_minor", BigInteger),
    Column("shipping_tax_minor", BigInteger),
    Column("customer_id", String(128)),
    Column("placed_at", DateTime(timezone=True)),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    Column("line_id", String(128), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("paid_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
)

shipments = Table(
    "shipments",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    Column("shipment_id", String(128), primary_key=True),
    Column("warehouse_id", String(128), nullable=False),
    Column("shipped_at", DateTime(timezone=True), nullable=False),
)

shipment_lines = Table(
    "shipment_lines",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("shipment_id", String(128), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    ForeignKeyConstraint(
        ["order_id", "shipment_id"], ["shipments.order_id", "shipments.shipment_id"]
    ),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("shipment_id", String(128), primary_key=True),
    Column("delivered_at", DateTime(timezone=True), nullable=False),
)

returns = Table(
    "returns",
    metadata,
    Column("return_id", String(128), primary_key=True),
    Column("order_id", String(64), ForeignKey("orders.order_id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("label_reference", String(128)),
    Column("rejection_reasons", JSONB),
    Column("receiving_warehouse_id", String(128)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN ('requested', 'approved', 'rejected', 'completed')", name="returns_status"
    ),
)
Index("returns_by_order", returns.c.order_id)

return_lines = Table(
    "return_lines",
    metadata,
    Column("return_id", String(128), ForeignKey("returns.return_id"), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("reason_code", String(32), nullable=False),
    # Inspection results, filled in when the parcel is received.
    Column("received_quantity", Integer),
    Column("restockable_quantity", Integer),
    Column("inspection_note", Text),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", String(128), primary_key=True),
    Column("return_id", String(128), ForeignKey("returns.return_id"), nullable=False, unique=True),
    Column("order_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("lines_amount_minor", BigInteger, nullable=False),
    Column("lines_tax_minor", BigInteger, nullable=False),
    Column("shipping_refunded_minor", BigInteger, nullable=False),
    Column("shipping_tax_minor", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("policy", String(128), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

refund_lines = Table(
    "refund_lines",
    metadata,
    Column("refund_id", String(128), ForeignKey("refunds.refund_id"), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("tax_minor", BigInteger, nullable=False),
)


# The statements every command on a return runs are built once: building one costs as
# much CPU as executing it.
_LOCK_ORDER = (
    select(orders.c.order_id).where(orders.c.order_id == bindparam("order_id")).with_for_update()
)


async def lock_order(connection: AsyncConnection, order_id: str) -> bool:
    """Locks the order's row for this transaction; False when the order is unknown."""
    row = await connection.execute(_LOCK_ORDER, {"order_id": order_id})
    return row.first() is not None


_ORDER_OF_RETURN = select(returns.c.order_id).where(returns.c.return_id == bindparam("return_id"))


async def order_of_return(connection: AsyncConnection, return_id: str) -> str | None:
    row = await connection.execute(_ORDER_OF_RETURN, {"return_id": return_id})
    return row.scalar_one_or_none()


_ORDER = select(orders).where(orders.c.order_id == bindparam("order_id"))
_ORDER_LINES = (
    select(order_lines)
    .where(order_lines.c.order_id == bindparam("order_id"))
    .order_by(order_lines.c.line_id)
)
_SHIPMENT_LINES = select(shipment_lines).where(shipment_lines.c.order_id == bindparam("order_id"))
_SHIPMENTS = (
    select(shipments, deliveries.c.delivered_at)
    .outerjoin(
        deliveries,
        (deliveries.c.order_id == shipments.c.order_id)
        & (deliveries.c.shipment_id == shipments.c.shipment_id),
    )
    .where(shipments.c.order_id == bindparam("order_id"))
    .order_by(shipments.c.shipped_at, shipments.c.shipment_id)
)


async def load_order(connection: AsyncConnection, order_id: str) -> domain.OrderFacts | None:
    key = {"order_id": order_id}
    row = (await connection.execute(_ORDER, key)).first()
    if row is None:
        return None
    placement = None
    if row.currency is not None:
        lines = await connection.execute(_ORDER_LINES, key)
        placement = domain.Placement(
            currency=row.currency,
            shipping_paid=domain.TaxedAmount(row.shipping_paid_minor, row.shipping_tax_minor),
            customer_id=row.customer_id,
            lines=tuple(
                domain.OrderedLine(
                    line.sku, line.quantity, domain.TaxedAmount(line.paid_minor, line.tax_minor)
                )
                for line in lines
            ),
        )
    quantities: dict[str, dict[str, int]] = {}
    for line in await connection.execute(_SHIPMENT_LINES, key):
        quantities.setdefault(line.shipment_id, {})[line.sku] = line.quantity
    shipped = await connection.execute(_SHIPMENTS, key)
    return domain.OrderFacts(
        order_id=order_id,
        placement=placement,
        shipments=tuple(
            domain.Shipment(
                shipment_id=shipment.shipment_id,
                warehouse_id=shipment.warehouse_id,
                shipped_at=shipment.shipped_at,
                quantities=quantities.get(shipment.shipment_id, {}),
                delivered_at=shipment.delivered_at,
            )
            for shipment in shipped
        ),
    )


@functools.cache
def _returns_where(columns: tuple[str, ...]) -> Select[Any]:
    query = select(returns).order_by(returns.c.requested_at, returns.c.return_id)
    for name in columns:
        query = query.where(returns.c[name] == bindparam(name))
    return query


_LINES_OF_RETURNS = (
    select(return_lines)
    .where(return_lines.c.return_id.in_(bindparam("ids", expanding=True)))
    .order_by(return_lines.c.sku)
)
_REFUNDS_OF_RETURNS = select(refunds).where(
    refunds.c.return_id.in_(bindparam("ids", expanding=True))
)
_REFUND_LINES_OF_RETURNS = (
    select(refund_lines)
    .join(refunds, refunds.c.refund_id == refund_lines.c.refund_id)
    .where(refunds.c.return_id.in_(bindparam("ids", expanding=True)))
    .order_by(refund_lines.c.sku)
)


async def load_returns(
    connection: AsyncConnection,
    *,
    order_id: str | None = None,
    return_id: str | None = None,
) -> list[domain.Return]:
    """The returns of an order, or the one return with that id, oldest first."""
    key = {
        name: value
        for name, value in (("order_id", order_id), ("return_id", return_id))
        if value is not None
    }
    rows = (await connection.execute(_returns_where(tuple(key)), key)).all()
    ids = [row.return_id for row in rows]
    if not ids:
        return []
    lines_of: dict[str, list[Any]] = {}
    for line in await connection.execute(_LINES_OF_RETURNS, {"ids": ids}):
        lines_of.setdefault(line.return_id, []).append(line)
    refunded_lines_of: dict[str, list[domain.RefundedLine]] = {}
    for line in await connection.execute(_REFUND_LINES_OF_RETURNS, {"ids": ids}):
        refunded_lines_of.setdefault(line.refund_id, []).append(
            domain.RefundedLine(
                line.sku, line.quantity, domain.TaxedAmount(line.amount_minor, line.tax_minor)
            )
        )
    refund_of = {
        refund.return_id: domain.Refund(
            refund_id=refund.refund_id,
            currency=refund.currency,
            lines_total=domain.TaxedAmount(refund.lines_amount_minor, refund.lines_tax_minor),
            shipping=domain.TaxedAmount(refund.shipping_refunded_minor, refund.shipping_tax_minor),
            policy=refund.policy,
            lines=tuple(refunded_lines_of.get(refund.refund_id, ())),
        )
        for refund in await connection.execute(_REFUNDS_OF_RETURNS, {"ids": ids})
    }
    return [
        _return_from_rows(row, lines_of.get(row.return_id, []), refund_of.get(row.return_id))
        for row in rows
    ]


def _return_from_rows(
    row: Any, lines: Sequence[Any], refund: domain.Refund | None
) -> domain.Return:
    return domain.Return(
        return_id=row.return_id,
        order_id=row.order_id,
        status=domain.ReturnStatus(row.status),
        lines=tuple(
            domain.RequestedLine(line.sku, line.quantity, domain.ReturnReason(line.reason_code))
            for line in lines
        ),
        requested_at=row.requested_at,
        label_reference=row.label_reference,
        rejection_reasons=tuple(
            domain.Refusal(
                domain.RejectionCode(reason["code"]), reason["message"], reason.get("field")
            )
            for reason in row.rejection_reasons or ()
        ),
        receiving_warehouse_id=row.receiving_warehouse_id,
        received=tuple(
            domain.ReceivedLine(
                line.sku, line.received_quantity, line.restockable_quantity, line.inspection_note
            )
            for line in lines
            if line.received_quantity
        ),
        refund=refund,
    )


_INSERT_RETURN = insert(returns).values(
    {
        name: bindparam(name)
        for name in (
            "return_id",
            "order_id",
            "status",
            "requested_at",
            "label_reference",
            "rejection_reasons",
        )
    }
)
_INSERT_RETURN_LINES = insert(return_lines)


async def insert_return(connection: AsyncConnection, rma: domain.Return) -> None:
    await connection.execute(
        _INSERT_RETURN,
        {
            "return_id": rma.return_id,
            "order_id": rma.order_id,
            "status": rma.status.value,
            "requested_at": rma.requested_at,
            "label_reference": rma.label_reference,
            "rejection_reasons": _reasons_json(rma.rejection_reasons),
        },
    )
    await connection.execute(
        _INSERT_RETURN_LINES,
        [
            {
                "return_id": rma.return_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "reason_code": line.reason.value,
            }
            for line in rma.lines
        ],
    )


@functools.cache
def _change_status(columns: tuple[str, ...]) -> Update:
    return (
        update(returns)
        .where(
            returns.c.return_id == bindparam("key_return_id"),
            returns.c.status == bindparam("expected_status"),
        )
        .values(
            {name: bindparam(name) for name in ("status", *columns)} | {"updated_at": func.now()}
        )
    )


async def change_status(
    connection: AsyncConnection,
    return_id: str,
    *,
    expected: domain.ReturnStatus,
    new: domain.ReturnStatus,
    **columns: Any,
) -> None:
    """Moves the return from `expected` to `new`, setting `columns`. Callers hold the
    order's lock and checked the state; the condition keeps a bug from skipping a step."""
    if "rejection_reasons" in columns:
        columns["rejection_reasons"] = _reasons_json(columns["rejection_reasons"])
    result = await connection.execute(
        _change_status(tuple(columns)),
        {
            "key_return_id": return_id,
            "expected_status": expected.value,
            "status": new.value,
            **columns,
        },
    )
    if result.rowcount != 1:
        raise RuntimeError(f"return {return_id} was not {expected} when moved to {new}")


_RECORD_INSPECTION = (
    update(return_lines)
    .where(
        return_lines.c.return_id == bindparam("key_return_id"),
        return_lines.c.sku == bindparam("key_sku"),
    )
    .values(
        {
            name: bindparam(name)
            for name in ("received_quantity", "restockable_quantity", "inspection_note")
        }
    )
)


async def record_inspection(
    connection: AsyncConnection, return_id: str, received: Sequence[domain.ReceivedLine]
) -> None:
    for line in received:
        await connection.execute(
            _RECORD_INSPECTION,
            {
                "key_return_id": return_id,
                "key_sku": line.sku,
                "received_quantity": line.quantity,
                "restockable_quantity": line.restockable_quantity,
                "inspection_note": line.note,
            },
        )


_INSERT_REFUND = insert(refunds).values(
    {
        name: bindparam(name)
        for name in (
            "refund_id",
            "return_id",
            "order_id",
            "currency",
            "lines_amount_minor",
            "lines_tax_minor",
            "shipping_refunded_minor",
            "shipping_tax_minor",
            "amount_minor",
            "policy",
        )
    }
)
_INSERT_REFUND_LINES = insert(refund_lines)


async def insert_refund(
    connection: AsyncConnection, return_id: str, order_id: str, refund: domain.Refund
) -> None:
    await connection.execute(
        _INSERT_REFUND,
        {
            "refund_id": refund.refund_id,
            "return_id": return_id,
            "order_id": order_id,
            "currency": refund.currency,
            "lines_amount_minor": refund.lines_amount_minor,
            "lines_tax_minor": refund.lines_total.tax_minor,
            "shipping_refunded_minor": refund.shipping_refunded_minor,
            "shipping_tax_minor": refund.shipping.tax_minor,
            "amount_minor": refund.amount_minor,
            "policy": refund.policy,
        },
    )
    await connection.execute(
        _INSERT_REFUND_LINES,
        [
            {
                "refund_id": refund.refund_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "amount_minor": line.refunded.amount_minor,
                "tax_minor": line.refunded.tax_minor,
            }
            for line in refund.lines
        ],
    )


def _reasons_json(reasons: Sequence[domain.Refusal]) -> list[Mapping[str, Any]] | None:
    if not reasons:
        return None
    return [
        {"code": reason.code.value, "message": reason.message, "field": reason.field}
        for reason in reasons
    ]
