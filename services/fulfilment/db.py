"""Fulfilment's tables, and the queries of the warehouses' and carriers' commands and of
the shipment listings (consumed batches and the automatic mode read and write the same
tables set-based: `services.fulfilment.batch_state`).

`order_facts` remembers what fulfilment learnt about an order from the order topic
(cancellation, latest shipping address), because those events may arrive before the
inventory topic's StockReserved that creates the shipments. Its row is also the lock that
serialises everything done to one order's shipments.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Update,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from services.fulfilment.domain import PICKUP, Line, Parcel, ShipmentStatus

metadata = MetaData()

order_facts = Table(
    "order_facts",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancellation_reason", String(64)),
    Column("shipping_address", JSONB),
    Column("address_changed_at", DateTime(timezone=True)),
)

STATUSES = ", ".join(f"'{status}'" for status in ShipmentStatus)

shipments = Table(
    "shipments",
    metadata,
    Column("shipment_id", String(128), primary_key=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("warehouse_id", String(128), nullable=False),
    Column("warehouse_country", String(2)),
    Column("reservation_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("lines", JSONB, nullable=False),
    Column("shipping_speed", String(16), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("shipping_method", String(128), nullable=False),
    Column("shipping_cost_minor", BigInteger, nullable=False),
    Column("shipping_cost_currency", String(3), nullable=False),
    Column("international", Boolean),
    # none_as_null: a pickup's missing address is SQL NULL, not the JSON value null.
    Column("shipping_address", JSONB(none_as_null=True)),
    Column("customer_locale", String(16), nullable=False),
    Column("notes", String(2000)),
    Column("tracking_number", String(128), unique=True),
    Column("packages", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("picked_at", DateTime(timezone=True)),
    Column("packed_at", DateTime(timezone=True)),
    Column("shipped_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancellation_reason", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("next_step_at", DateTime(timezone=True)),
    UniqueConstraint("order_id", "warehouse_id", name="shipments_one_per_order_warehouse"),
    CheckConstraint(f"status IN ({STATUSES})", name="shipments_known_status"),
    CheckConstraint(
        f"(shipping_address IS NULL) = (carrier = '{PICKUP}')",
        name="shipments_pickup_has_no_address",
    ),
    Index(
        "shipments_next_step_due",
        "next_step_at",
        postgresql_where=text("next_step_at IS NOT NULL"),
    ),
)


@dataclass(frozen=True, slots=True)
class Shipment:
    shipment_id: str
    order_id: str
    warehouse_id: str
    warehouse_country: str | None
    """None for a shipment reserved before reservations named their warehouses' countries."""
    reservation_id: str
    status: ShipmentStatus
    lines: tuple[Line, ...]
    shipping_speed: str
    carrier: str
    shipping_method: str
    shipping_cost_minor: int
    shipping_cost_currency: str
    international: bool | None
    """None for a shipment planned before the plan recorded it."""
    shipping_address: dict[str, Any] | None
    """None for a pickup: the customer collects it at the warehouse."""
    customer_locale: str
    notes: str | None
    tracking_number: str | None
    packages: tuple[Parcel, ...] | None
    created_at: datetime
    picked_at: datetime | None
    packed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: str | None
    updated_at: datetime
    next_step_at: datetime | None


def _shipment_from(row: Any) -> Shipment:
    values = dict(row._mapping)
    values["status"] = ShipmentStatus(values["status"])
    values["lines"] = tuple(Line(line["sku"], line["quantity"]) for line in values["lines"])
    if values["packages"] is not None:
        values["packages"] = tuple(
            Parcel(package["package_id"], package["weight_grams"]) for package in values["packages"]
        )
    return Shipment(**values)


def lines_json(lines: tuple[Line, ...]) -> list[dict[str, Any]]:
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]


def parcels_json(parcels: tuple[Parcel, ...]) -> list[dict[str, Any]]:
    return [
        {"package_id": parcel.package_id, "weight_grams": parcel.weight_grams} for parcel in parcels
    ]


# Built once: the statements of the warehouses' and carriers' commands and of the queries.
_SHIPMENT = select(shipments).where(shipments.c.shipment_id == bindparam("shipment_id"))
_LOCK_SHIPMENT = _SHIPMENT.with_for_update()
_LOCK_SHIPMENT_BY_TRACKING_NUMBER = (
    select(shipments)
    .where(shipments.c.tracking_number == bindparam("tracking_number"))
    .with_for_update()
)
_ORDER_SHIPMENTS = (
    select(shipments)
    .where(shipments.c.order_id == bindparam("order_id"))
    .order_by(shipments.c.created_at, shipments.c.warehouse_id)
)


@functools.cache
def _update_shipment(columns: tuple[str, ...]) -> Update:
    return (
        update(shipments)
        .where(shipments.c.shipment_id == bindparam("key_shipment_id"))
        .values({column: bindparam(column, type_=shipments.c[column].type) for column in columns})
    )


async def get_shipment(connection: AsyncConnection, shipment_id: str) -> Shipment | None:
    row = (await connection.execute(_SHIPMENT, {"shipment_id": shipment_id})).first()
    return _shipment_from(row) if row is not None else None


async def lock_shipment(connection: AsyncConnection, shipment_id: str) -> Shipment | None:
    row = (await connection.execute(_LOCK_SHIPMENT, {"shipment_id": shipment_id})).first()
    return _shipment_from(row) if row is not None else None


async def lock_shipment_by_tracking_number(
    connection: AsyncConnection, tracking_number: str
) -> Shipment | None:
    row = (
        await connection.execute(
            _LOCK_SHIPMENT_BY_TRACKING_NUMBER, {"tracking_number": tracking_number}
        )
    ).first()
    return _shipment_from(row) if row is not None else None


async def order_shipments(connection: AsyncConnection, order_id: str) -> list[Shipment]:
    rows = (await connection.execute(_ORDER_SHIPMENTS, {"order_id": order_id})).all()
    return [_shipment_from(row) for row in rows]


async def update_shipment(connection: AsyncConnection, before: Shipment, after: Shipment) -> None:
    """Writes the columns in which `after` differs from `before` (the same shipment, locked)."""
    changed = {
        name: _stored(name, getattr(after, name))
        for name in _SHIPMENT_FIELDS
        if getattr(after, name) != getattr(before, name)
    }
    if changed:
        await connection.execute(
            _update_shipment(tuple(changed)), {"key_shipment_id": after.shipment_id, **changed}
        )


_SHIPMENT_FIELDS = tuple(field.name for field in dataclasses.fields(Shipment))


def _stored(name: str, value: Any) -> Any:
    """A field's value as its column takes it."""
    if value is None:
        return None
    if name == "status":
        return value.value
    if name == "lines":
        return lines_json(value)
    if name == "packages":
        return parcels_json(value)
    return value
