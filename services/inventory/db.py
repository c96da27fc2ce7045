"""Inventory tables and the small queries the HTTP commands and queries run on them
(consumed batches load and save with `batch_state`).

Stock rows are only ever changed under a row lock (`lock_stock` here, the batch's load
there), always taken in (sku, warehouse) order, so two transactions touching the same rows
queue instead of deadlocking; the CHECK constraints stay the last guard against a negative
level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from services.inventory.domain import (
    Location,
    MovementKind,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)

metadata = MetaData()

warehouses = Table(
    "warehouses",
    metadata,
    Column("warehouse_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("latitude BETWEEN -90 AND 90", name="warehouses_latitude_range"),
    CheckConstraint("longitude BETWEEN -180 AND 180", name="warehouses_longitude_range"),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column(
        "warehouse_id",
        String(128),
        ForeignKey("warehouses.warehouse_id"),
        primary_key=True,
    ),
    Column("on_hand", Integer, nullable=False, server_default="0"),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
    CheckConstraint("reserved <= on_hand", name="stock_reserved_within_on_hand"),
)

sku_thresholds = Table(
    "sku_thresholds",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("threshold", Integer, nullable=False),
    CheckConstraint("threshold >= 0", name="sku_thresholds_not_negative"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("reservation_id", String(128), nullable=False, unique=True),
    Column("status", String(32), nullable=False),
    Column("shortages", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN ('reserved', 'partially_committed', 'committed', 'released', 'failed')",
        name="reservations_status_known",
    ),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column("order_id", String(64), ForeignKey("reservations.order_id"), primary_key=True),
    Column("warehouse_id", String(128), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("reserved", Integer, nullable=False),
    Column("committed", Integer, nullable=False, server_default="0"),
    Column("released", Integer, nullable=False, server_default="0"),
    ForeignKeyConstraint(["sku", "warehouse_id"], ["stock.sku", "stock.warehouse_id"]),
    CheckConstraint("reserved > 0", name="reservation_lines_reserved_positive"),
    CheckConstraint(
        "committed >= 0 AND released >= 0 AND committed + released <= reserved",
        name="reservation_lines_within_reserved",
    ),
)

order_cancellations = Table(
    "order_cancellations",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("movement_id", BigInteger, Identity(), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("warehouse_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("on_hand_change", Integer, nullable=False),
    Column("reserved_change", Integer, nullable=False),
    Column("order_id", String(64)),
    Column("reference", String(128)),
    Column("note", String(2000)),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("quantity > 0", name="stock_movements_quantity_positive"),
    CheckConstraint(
        "kind IN ('received', 'adjusted', 'reserved', 'released', 'committed', "
        "'restocked', 'written_off')",
        name="stock_movements_kind_known",
    ),
    Index("stock_movements_by_sku", "sku", "movement_id"),
)

applied_documents = Table(
    "applied_documents",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("reference", String(128), primary_key=True),
    Column("sku", String(64)),
    Column("warehouse_id", String(128)),
    Column("quantity", Integer),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Receipts, adjustments, shipments and returns already applied, by their own reference:
the same document arriving again (a user retrying, a re-emitted event) changes nothing."""

StockKey = tuple[str, str]
"""(sku, warehouse_id)"""


@dataclass(frozen=True, slots=True)
class Warehouse:
    warehouse_id: str
    name: str
    country: str
    location: Location


@dataclass(frozen=True, slots=True)
class Movement:
    sku: str
    warehouse_id: str
    kind: MovementKind
    quantity: int
    on_hand_change: int = 0
    reserved_change: int = 0
    order_id: str | None = None
    reference: str | None = None
    note: str | None = None


# Built once: building a statement costs as much CPU as executing it.
_WAREHOUSE_EXISTS = select(warehouses.c.warehouse_id).where(
    warehouses.c.warehouse_id == bindparam("warehouse_id")
)
_THRESHOLDS = select(sku_thresholds.c.sku, sku_thresholds.c.threshold).where(
    sku_thresholds.c.sku.in_(bindparam("skus", expanding=True))
)
_ENSURE_STOCK_ROWS = insert(stock).on_conflict_do_nothing()
_LOCK_STOCK = (
    select(stock.c.sku, stock.c.warehouse_id, stock.c.on_hand, stock.c.reserved)
    .where(tuple_(stock.c.sku, stock.c.warehouse_id).in_(bindparam("keys", expanding=True)))
    .order_by(stock.c.sku, stock.c.warehouse_id)
    .with_for_update()
)
_SAVE_LEVEL = (
    update(stock)
    .where(stock.c.sku == bindparam("key_sku"))
    .where(stock.c.warehouse_id == bindparam("key_warehouse_id"))
    .values(
        on_hand=bindparam("new_on_hand"),
        reserved=bindparam("new_reserved"),
        updated_at=func.now(),
    )
)
_RECORD_MOVEMENT = insert(stock_movements)
_RESERVATION = select(reservations).where(reservations.c.order_id == bindparam("order_id"))
_RESERVATION_LINES = (
    select(reservation_lines)
    .where(reservation_lines.c.order_id == bindparam("order_id"))
    .order_by(reservation_lines.c.warehouse_id, reservation_lines.c.sku)
)
_IS_CANCELLED = select(order_cancellations.c.order_id).where(
    order_cancellations.c.order_id == bindparam("order_id")
)
_CLAIM_DOCUMENT = (
    insert(applied_documents)
    .values(
        kind=bindparam("kind"),
        reference=bindparam("reference"),
        sku=bindparam("sku"),
        warehouse_id=bindparam("warehouse_id"),
        quantity=bindparam("quantity"),
    )
    .on_conflict_do_nothing()
    .returning(applied_documents.c.reference)
)
_FIND_DOCUMENT = (
    select(
        applied_documents.c.sku,
        applied_documents.c.warehouse_id,
        applied_documents.c.quantity,
    )
    .where(applied_documents.c.kind == bindparam("kind"))
    .where(applied_documents.c.reference == bindparam("reference"))
)


# --- Warehouses ------------------------------------------------------------------------


async def save_warehouse(connection: AsyncConnection, warehouse: Warehouse) -> bool:
    """Creates or replaces the warehouse; True when it is new."""
    values: dict[str, object] = {
        "name": warehouse.name,
        "country": warehouse.country,
        "latitude": warehouse.location.latitude,
        "longitude": warehouse.location.longitude,
    }
    statement: ReturningInsert[tuple[bool]] = (
        insert(warehouses)
        .values(warehouse_id=warehouse.warehouse_id, **values)
        .on_conflict_do_update(
            index_elements=[warehouses.c.warehouse_id], set_={**values, "updated_at": func.now()}
        )
        # PostgreSQL leaves xmax at 0 on a row version written by an INSERT, and sets it
        # when ON CONFLICT turned the statement into an UPDATE.
        .returning(literal_column("xmax = 0").label("created"))
    )
    return bool((await connection.execute(statement)).scalar_one())


async def warehouse_exists(connection: AsyncConnection, warehouse_id: str) -> bool:
    found = await connection.execute(_WAREHOUSE_EXISTS, {"warehouse_id": warehouse_id})
    return found.first() is not None


async def all_warehouses(connection: AsyncConnection) -> list[Warehouse]:
    rows = await connection.execute(select(warehouses).order_by(warehouses.c.warehouse_id))
    return [
        Warehouse(
            warehouse_id=row.warehouse_id,
            name=row.name,
            country=row.country,
            location=Location(row.latitude, row.longitude),
        )
        for row in rows
    ]


# --- Thresholds ------------------------------------------------------------------------


async def set_threshold(connection: AsyncConnection, sku: str, threshold: int) -> None:
    statement = insert(sku_thresholds).values(sku=sku, threshold=threshold)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[sku_thresholds.c.sku], set_={"threshold": threshold}
        )
    )


async def thresholds_for(
    connection: AsyncConnection, skus: Iterable[str], default: int
) -> dict[str, int]:
    wanted = sorted(set(skus))
    rows = await connection.execute(_THRESHOLDS, {"skus": wanted})
    configured = {row.sku: row.threshold for row in rows}
    return {sku: configured.get(sku, default) for sku in wanted}


# --- Stock -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockRow:
    sku: str
    warehouse_id: str
    level: StockLevel


async def ensure_stock_rows(connection: AsyncConnection, keys: Iterable[StockKey]) -> None:
    """Rows to lock for SKUs a warehouse never held before (a first receipt, a return)."""
    rows = [{"sku": sku, "warehouse_id": warehouse_id} for sku, warehouse_id in sorted(set(keys))]
    if rows:
        await connection.execute(_ENSURE_STOCK_ROWS, rows)


async def lock_stock(
    connection: AsyncConnection, keys: Iterable[StockKey]
) -> dict[StockKey, StockLevel]:
    """Locks the rows, in (sku, warehouse) order, and reads them as they are now."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await connection.execute(_LOCK_STOCK, {"keys": wanted})
    return {(row.sku, row.warehouse_id): StockLevel(row.on_hand, row.reserved) for row in rows}


async def save_levels(connection: AsyncConnection, levels: Mapping[StockKey, StockLevel]) -> None:
    if not levels:
        return
    await connection.execute(
        _SAVE_LEVEL,
        [
            {
                "key_sku": sku,
                "key_warehouse_id": warehouse_id,
                "new_on_hand": level.on_hand,
                "new_reserved": level.reserved,
            }
            for (sku, warehouse_id), level in sorted(levels.items())
        ],
    )


async def stock_of_sku(connection: AsyncConnection, sku: str) -> list[StockRow]:
    rows = await connection.execute(
        select(stock.c.sku, stock.c.warehouse_id, stock.c.on_hand, stock.c.reserved)
        .where(stock.c.sku == sku)
        .order_by(stock.c.warehouse_id)
    )
    return [_stock_row(row) for row in rows]


async def stock_page(connection: AsyncConnection, *, offset: int, limit: int) -> list[StockRow]:
    rows = await connection.execute(
        select(stock.c.sku, stock.c.warehouse_id, stock.c.on_hand, stock.c.reserved)
        .order_by(stock.c.sku, stock.c.warehouse_id)
        .offset(offset)
        .limit(limit)
    )
    return [_stock_row(row) for row in rows]


def _stock_row(row: Row[Any, Any, Any, Any]) -> StockRow:
    return StockRow(row.sku, row.warehouse_id, StockLevel(row.on_hand, row.reserved))


# --- Ledger ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedMovement:
    movement_id: int
    movement: Movement
    at: datetime


async def record_movements(connection: AsyncConnection, movements: Sequence[Movement]) -> None:
    if movements:
        await connection.execute(
            _RECORD_MOVEMENT,
            [
                {
                    "sku": movement.sku,
                    "warehouse_id": movement.warehouse_id,
                    "kind": movement.kind.value,
                    "quantity": movement.quantity,
                    "on_hand_change": movement.on_hand_change,
                    "reserved_change": movement.reserved_change,
                    "order_id": movement.order_id,
                    "reference": movement.reference,
                    "note": movement.note,
                }
                for movement in movements
            ],
        )


async def movements(
    connection: AsyncConnection,
    *,
    sku: str | None,
    warehouse_id: str | None,
    order_id: str | None,
    after: int,
    limit: int,
) -> list[RecordedMovement]:
    query = (
        select(stock_movements)
        .where(stock_movements.c.movement_id > after)
        .order_by(stock_movements.c.movement_id)
        .limit(limit)
    )
    if sku is not None:
        query = query.where(stock_movements.c.sku == sku)
    if warehouse_id is not None:
        query = query.where(stock_movements.c.warehouse_id == warehouse_id)
    if order_id is not None:
        query = query.where(stock_movements.c.order_id == order_id)
    rows = await connection.execute(query)
    return [
        RecordedMovement(
            movement_id=row.movement_id,
            movement=Movement(
                sku=row.sku,
                warehouse_id=row.warehouse_id,
                kind=MovementKind(row.kind),
                quantity=row.quantity,
                on_hand_change=row.on_hand_change,
                reserved_change=row.reserved_change,
                order_id=row.order_id,
                reference=row.reference,
                note=row.note,
            ),
            at=row.at,
        )
        for row in rows
    ]


# --- Reservations ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reservation:
    order_id: str
    reservation_id: str
    status: ReservationStatus
    lines: tuple[ReservationLine, ...]
    shortages: tuple[Mapping[str, Any], ...]
    cancelled: bool


async def find_reservation(connection: AsyncConnection, order_id: str) -> Reservation | None:
    parameters = {"order_id": order_id}
    header = (await connection.execute(_RESERVATION, parameters)).first()
    if header is None:
        return None
    lines = await connection.execute(_RESERVATION_LINES, parameters)
    return Reservation(
        order_id=header.order_id,
        reservation_id=header.reservation_id,
        status=ReservationStatus(header.status),
        lines=tuple(
            ReservationLine(
                warehouse_id=line.warehouse_id,
                sku=line.sku,
                reserved=line.reserved,
                committed=line.committed,
                released=line.released,
            )
            for line in lines
        ),
        shortages=tuple(header.shortages or ()),
        cancelled=await is_cancelled(connection, order_id),
    )


async def is_cancelled(connection: AsyncConnection, order_id: str) -> bool:
    found = await connection.execute(_IS_CANCELLED, {"order_id": order_id})
    return found.first() is not None


# --- Applied documents -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppliedDocument:
    sku: str | None
    warehouse_id: str | None
    quantity: int | None


async def claim_document(
    connection: AsyncConnection,
    kind: str,
    reference: str,
    *,
    sku: str | None = None,
    warehouse_id: str | None = None,
    quantity: int | None = None,
) -> AppliedDocument | None:
    """Records the document as applied. Returns None when it is new, else what was
    recorded when it was first applied (a concurrent duplicate waits for the first)."""
    inserted = await connection.execute(
        _CLAIM_DOCUMENT,
        {
            "kind": kind,
            "reference": reference,
            "sku": sku,
            "warehouse_id": warehouse_id,
            "quantity": quantity,
        },
    )
    if inserted.first() is not None:
        return None
    earlier = await find_document(connection, kind, reference)
    if earlier is None:
        # ON CONFLICT only skips a row that a committed transaction holds.
        raise RuntimeError(f"{kind} {reference!r} conflicted but cannot be read")
    return earlier


async def find_document(
    connection: AsyncConnection, kind: str, reference: str
) -> AppliedDocument | None:
    found = (
        await connection.execute(_FIND_DOCUMENT, {"kind": kind, "reference": reference})
    ).first()
    return None if found is None else AppliedDocument(found.sku, found.warehouse_id, found.quantity)
