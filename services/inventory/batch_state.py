"""What a consumed batch works on, loaded and saved set-based on the batch's asyncpg
connection: one statement per table to load (two for stock when a return brings a SKU new
to its warehouse), one per table to save, however many events the batch holds.

Loading takes the batch's locks, always in the same order (applied documents, then
reservations by order id, then stock rows by (sku, warehouse)), each set in key order, so
two replicas whose batches share rows queue instead of deadlocking, and whoever waited
reads what the other committed. For an order to reserve, every warehouse's row of each of
its SKUs is locked: that is what sourcing compares. The use cases then change the state in
memory, event by event (an order twice in one batch sees its own first change), and the
state remembers what changed, so saving writes only that: each stock row once, with its
final level.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import asyncpg

from contracts.base import Event
from contracts.events.fulfilment import Shipped
from contracts.events.order import OrderCancelled, OrderPlaced
from contracts.events.returns import ReturnReceived
from services.inventory.db import Movement, StockKey
from services.inventory.domain import (
    Location,
    ReservationLine,
    ReservationStatus,
    Shortage,
    StockLevel,
    account_for_return,
)
from services.kit.logs import get_logger

log = get_logger(__name__)

# Kinds of applied documents a consumed event books: each is applied once, by its id.
SHIPMENT = "shipment"
RETURN = "return"

LineKey = tuple[str, str]
"""(warehouse_id, sku): a reservation line within its order."""

_CLAIM_DOCUMENTS = """
INSERT INTO applied_documents (kind, reference)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (kind, reference) DO NOTHING
RETURNING kind, reference
"""
_LOCK_RESERVATIONS = """
SELECT order_id, reservation_id, status FROM reservations
WHERE order_id = ANY($1::text[])
ORDER BY order_id
FOR UPDATE
"""
_RESERVATION_LINES = """
SELECT order_id, warehouse_id, sku, reserved, committed, released FROM reservation_lines
WHERE order_id = ANY($1::text[])
ORDER BY order_id, warehouse_id, sku
"""
_CANCELLED = "SELECT order_id FROM order_cancellations WHERE order_id = ANY($1::text[])"
# Rows for SKUs a warehouse never held before (a return); an unknown warehouse gets none,
# and its event fails in its use case with the reason.
_ENSURE_STOCK_ROWS = """
INSERT INTO stock (sku, warehouse_id)
SELECT wanted.sku, wanted.warehouse_id
FROM unnest($1::text[], $2::text[]) AS wanted(sku, warehouse_id)
JOIN warehouses USING (warehouse_id)
ORDER BY wanted.sku, wanted.warehouse_id
ON CONFLICT DO NOTHING
"""
# $1 every SKU named, so the primary key finds the candidates; of those, every warehouse's
# row of the SKUs in $2, and the single rows ($3, $4) of the others. Rows are locked as the
# sort emits them: in key order.
_LOCK_STOCK = """
SELECT sku, warehouse_id, on_hand, reserved FROM stock
WHERE sku = ANY($1::text[])
  AND (sku = ANY($2::text[])
       OR (sku, warehouse_id) IN (SELECT * FROM unnest($3::text[], $4::text[])))
ORDER BY sku, warehouse_id
FOR UPDATE
"""
_THRESHOLDS = "SELECT sku, threshold FROM sku_thresholds WHERE sku = ANY($1::text[])"
_WAREHOUSES = """
SELECT warehouse_id, country, latitude, longitude FROM warehouses
WHERE warehouse_id = ANY($1::text[])
"""

_SAVE_LEVELS = """
UPDATE stock
SET on_hand = saved.on_hand, reserved = saved.reserved, updated_at = now()
FROM unnest($1::text[], $2::text[], $3::int[], $4::int[])
    AS saved(sku, warehouse_id, on_hand, reserved)
WHERE stock.sku = saved.sku AND stock.warehouse_id = saved.warehouse_id
"""
_REMEMBER_CANCELLATIONS = """
INSERT INTO order_cancellations (order_id)
SELECT * FROM unnest($1::text[])
ON CONFLICT (order_id) DO NOTHING
"""
# New reservations and changed ones in one statement. An existing row is updated only when
# it is the reservation this batch loaded (locked): a new one colliding with a reservation
# committed since the load is not returned, and the batch fails (see OrderAnsweredMeanwhile).
_SAVE_RESERVATIONS = """
INSERT INTO reservations AS saved (order_id, reservation_id, status, shortages)
SELECT order_id, reservation_id, status, shortages::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
    AS written(order_id, reservation_id, status, shortages)
ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, updated_at = now()
    WHERE saved.reservation_id = excluded.reservation_id
RETURNING order_id
"""
_SAVE_RESERVATION_LINES = """
INSERT INTO reservation_lines (order_id, warehouse_id, sku, reserved, committed, released)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[])
ON CONFLICT (order_id, warehouse_id, sku)
    DO UPDATE SET committed = excluded.committed, released = excluded.released
"""
_RECORD_MOVEMENTS = """
INSERT INTO stock_movements
    (sku, warehouse_id, kind, quantity, on_hand_change, reserved_change, order_id, reference, note)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[],
    $7::text[], $8::text[], $9::text[]
)
"""


class OrderAnsweredMeanwhile(RuntimeError):
    """Another consumer reserved for one of the batch's orders after this batch loaded
    (the order's partition moved between replicas mid-batch). The batch rolls back; when
    its records are applied again, the order is found answered and is not reserved twice."""


@dataclass(frozen=True, slots=True)
class WarehouseSite:
    country: str
    location: Location


@dataclass(slots=True)
class HeldReservation:
    """An order's reservation as the batch has it; `lines` in (warehouse, sku) order."""

    order_id: str
    reservation_id: str
    status: ReservationStatus
    lines: dict[LineKey, ReservationLine]
    shortages: tuple[Shortage, ...] = ()
    created: bool = False
    """Made by this batch: saved whole."""
    changed: bool = False
    changed_lines: set[LineKey] = field(default_factory=set)


@dataclass(slots=True)
class InventoryBatch:
    """The rows a batch's events read and change, and what they changed."""

    warehouses: dict[str, WarehouseSite]
    """The warehouses the batch names or holds stock in, by id; one missing is unknown."""
    stock: dict[StockKey, StockLevel]
    """Current levels of the locked rows; a key missing has no row."""
    warehouses_holding: dict[str, tuple[str, ...]]
    """For each SKU of an order to reserve: every warehouse with a row of it, by id."""
    thresholds: dict[str, int]
    """Low-stock threshold of each SKU whose stock may fall (the default if it has none)."""
    reservations: dict[str, HeldReservation]
    cancelled: set[str]
    """Orders known cancelled, of those to reserve and those cancelled in the batch."""
    unapplied_documents: set[tuple[str, str]]
    """(kind, reference) claimed by this batch and not applied yet."""
    loaded_stock: dict[StockKey, StockLevel] = field(init=False)
    """The levels as loaded: what is saved is what differs."""
    new_cancellations: list[str] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.loaded_stock = dict(self.stock)

    def apply_document(self, kind: str, reference: str) -> bool:
        """True the first time: the document is new and is now applied."""
        try:
            self.unapplied_documents.remove((kind, reference))
        except KeyError:
            return False
        return True

    def remember_cancellation(self, order_id: str) -> None:
        if order_id not in self.cancelled:
            self.cancelled.add(order_id)
            self.new_cancellations.append(order_id)

    def change_stock(
        self, levels: Mapping[StockKey, StockLevel], movements: Iterable[Movement]
    ) -> None:
        self.stock.update(levels)
        self.movements.extend(movements)

    def add_reservation(self, reservation: HeldReservation) -> None:
        reservation.created = True
        self.reservations[reservation.order_id] = reservation

    def update_reservation(
        self,
        reservation: HeldReservation,
        status: ReservationStatus,
        lines: Iterable[ReservationLine],
    ) -> None:
        reservation.status = status
        reservation.changed = True
        for line in lines:
            key = (line.warehouse_id, line.sku)
            reservation.lines[key] = line
            reservation.changed_lines.add(key)

    def changed_levels(self) -> dict[StockKey, StockLevel]:
        return {key: level for key, level in self.stock.items() if level != self.loaded_stock[key]}


# --- Load ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Consumed:
    """The batch's events by type, in batch order."""

    placed: list[OrderPlaced] = field(default_factory=list)
    cancelled: list[OrderCancelled] = field(default_factory=list)
    shipped: list[Shipped] = field(default_factory=list)
    returned: list[ReturnReceived] = field(default_factory=list)

    @classmethod
    def of(cls, events: Sequence[Event]) -> _Consumed:
        consumed = cls()
        for event in events:
            match event:
                case OrderPlaced():
                    consumed.placed.append(event)
                case OrderCancelled():
                    consumed.cancelled.append(event)
                case Shipped():
                    consumed.shipped.append(event)
                case ReturnReceived():
                    consumed.returned.append(event)
        return consumed


async def load(
    connection: asyncpg.Connection, events: Sequence[Event], *, default_threshold: int
) -> InventoryBatch:
    """Loads (and locks) what the events need. Rows only a repeated event would touch (a
    shipment or return applied before, an order answered or cancelled before) are left
    alone: its use case ignores it."""
    consumed = _Consumed.of(events)
    named_warehouses = {shipped.warehouse_id for shipped in consumed.shipped} | {
        received.warehouse_id for received in consumed.returned
    }
    new_documents = await _claim_documents(
        connection,
        [(SHIPMENT, shipped.shipment_id) for shipped in consumed.shipped]
        + [(RETURN, received.return_id) for received in consumed.returned],
    )
    shipments = [
        shipped for shipped in consumed.shipped if (SHIPMENT, shipped.shipment_id) in new_documents
    ]
    returns = [
        received for received in consumed.returned if (RETURN, received.return_id) in new_documents
    ]
    reservations = await _lock_reservations(
        connection,
        [order.order_id for order in consumed.placed]
        + [cancellation.order_id for cancellation in consumed.cancelled]
        + [shipped.order_id for shipped in shipments],
    )
    unanswered = [order for order in consumed.placed if order.order_id not in reservations]
    cancelled = await _cancelled(connection, [order.order_id for order in unanswered])
    to_reserve = {
        line.sku for order in unanswered if order.order_id not in cancelled for line in order.lines
    }
    restocked = [
        (line.sku, received.warehouse_id)
        for received in returns
        for line in received.lines
        if account_for_return(line.quantity, line.restockable_quantity).restocked
    ]
    released = [
        (line.sku, line.warehouse_id)
        for cancellation in consumed.cancelled
        if (reservation := reservations.get(cancellation.order_id)) is not None
        for line in reservation.lines.values()
        if line.open > 0
    ]
    committed = [
        (line.sku, shipped.warehouse_id) for shipped in shipments for line in shipped.lines
    ]
    await _ensure_stock_rows(connection, restocked)
    stock, warehouses_holding = await _lock_stock(
        connection, to_reserve, [*restocked, *released, *committed]
    )
    thresholds = await _thresholds(
        connection, to_reserve | {sku for sku, _ in committed}, default_threshold
    )
    warehouses = await _warehouses(
        connection,
        named_warehouses
        | {warehouse_id for _, warehouse_id in stock}
        | {warehouse_id for held in reservations.values() for warehouse_id, _ in held.lines},
    )
    return InventoryBatch(
        warehouses=warehouses,
        stock=stock,
        warehouses_holding=warehouses_holding,
        thresholds=thresholds,
        reservations=reservations,
        cancelled=cancelled,
        unapplied_documents=new_documents,
    )


async def _claim_documents(
    connection: asyncpg.Connection, documents: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Records the documents as applied; returns those new. One already applied by a
    transaction still running waits for it, and is then not new."""
    wanted = sorted(set(documents))
    if not wanted:
        return set()
    rows = await connection.fetch(
        _CLAIM_DOCUMENTS, [kind for kind, _ in wanted], [reference for _, reference in wanted]
    )
    return {(row["kind"], row["reference"]) for row in rows}


async def _lock_reservations(
    connection: asyncpg.Connection, order_ids: Iterable[str]
) -> dict[str, HeldReservation]:
    wanted = sorted(set(order_ids))
    if not wanted:
        return {}
    headers = await connection.fetch(_LOCK_RESERVATIONS, wanted)
    if not headers:
        return {}
    found = {
        header["order_id"]: HeldReservation(
            order_id=header["order_id"],
            reservation_id=header["reservation_id"],
            status=ReservationStatus(header["status"]),
            lines={},
        )
        for header in headers
    }
    for row in await connection.fetch(_RESERVATION_LINES, list(found)):
        found[row["order_id"]].lines[(row["warehouse_id"], row["sku"])] = ReservationLine(
            warehouse_id=row["warehouse_id"],
            sku=row["sku"],
            reserved=row["reserved"],
            committed=row["committed"],
            released=row["released"],
        )
    return found


async def _cancelled(connection: asyncpg.Connection, order_ids: Sequence[str]) -> set[str]:
    if not order_ids:
        return set()
    return {row["order_id"] for row in await connection.fetch(_CANCELLED, list(order_ids))}


async def _ensure_stock_rows(connection: asyncpg.Connection, keys: Iterable[StockKey]) -> None:
    wanted = sorted(set(keys))
    if wanted:
        await connection.execute(
            _ENSURE_STOCK_ROWS, [sku for sku, _ in wanted], [warehouse for _, warehouse in wanted]
        )


async def _lock_stock(
    connection: asyncpg.Connection, skus: set[str], keys: Iterable[StockKey]
) -> tuple[dict[StockKey, StockLevel], dict[str, tuple[str, ...]]]:
    """Locks every warehouse's row of `skus` and the rows of `keys`; returns the levels and,
    per SKU of `skus`, the warehouses that hold a row of it."""
    single = sorted({(sku, warehouse) for sku, warehouse in keys if sku not in skus})
    if not skus and not single:
        return {}, {}
    rows = await connection.fetch(
        _LOCK_STOCK,
        sorted(skus | {sku for sku, _ in single}),
        sorted(skus),
        [sku for sku, _ in single],
        [warehouse for _, warehouse in single],
    )
    holding: dict[str, list[str]] = {sku: [] for sku in skus}
    levels: dict[StockKey, StockLevel] = {}
    for row in rows:
        sku, warehouse_id = row["sku"], row["warehouse_id"]
        levels[(sku, warehouse_id)] = StockLevel(row["on_hand"], row["reserved"])
        if sku in holding:
            holding[sku].append(warehouse_id)
    return levels, {sku: tuple(warehouse_ids) for sku, warehouse_ids in holding.items()}


async def _thresholds(
    connection: asyncpg.Connection, skus: set[str], default: int
) -> dict[str, int]:
    if not skus:
        return {}
    configured = {
        row["sku"]: row["threshold"] for row in await connection.fetch(_THRESHOLDS, sorted(skus))
    }
    return {sku: configured.get(sku, default) for sku in skus}


async def _warehouses(
    connection: asyncpg.Connection, warehouse_ids: set[str]
) -> dict[str, WarehouseSite]:
    if not warehouse_ids:
        return {}
    rows = await connection.fetch(_WAREHOUSES, sorted(warehouse_ids))
    return {
        row["warehouse_id"]: WarehouseSite(
            row["country"], Location(row["latitude"], row["longitude"])
        )
        for row in rows
    }


# --- Save ------------------------------------------------------------------------------


async def save(connection: asyncpg.Connection, batch: InventoryBatch) -> None:
    levels = sorted(batch.changed_levels().items())
    if levels:
        await connection.execute(
            _SAVE_LEVELS,
            [sku for (sku, _), _ in levels],
            [warehouse_id for (_, warehouse_id), _ in levels],
            [level.on_hand for _, level in levels],
            [level.reserved for _, level in levels],
        )
    if batch.new_cancellations:
        await connection.execute(_REMEMBER_CANCELLATIONS, batch.new_cancellations)
    await _save_reservations(connection, batch)
    await _record_movements(connection, batch.movements)
    _log_answers(batch)


async def _save_reservations(connection: asyncpg.Connection, batch: InventoryBatch) -> None:
    written = [
        reservation
        for reservation in batch.reservations.values()
        if reservation.created or reservation.changed
    ]
    if not written:
        return
    saved = await connection.fetch(
        _SAVE_RESERVATIONS,
        [reservation.order_id for reservation in written],
        [reservation.reservation_id for reservation in written],
        [reservation.status.value for reservation in written],
        [
            json.dumps([asdict(shortage) for shortage in reservation.shortages])
            if reservation.shortages
            else None
            for reservation in written
        ],
    )
    if len(saved) != len(written):
        answered = sorted(
            {reservation.order_id for reservation in written} - {row["order_id"] for row in saved}
        )
        raise OrderAnsweredMeanwhile(f"orders answered by another consumer meanwhile: {answered}")
    lines = [
        (reservation.order_id, line)
        for reservation in written
        for key, line in reservation.lines.items()
        if reservation.created or key in reservation.changed_lines
    ]
    if lines:
        await connection.execute(
            _SAVE_RESERVATION_LINES,
            [order_id for order_id, _ in lines],
            [line.warehouse_id for _, line in lines],
            [line.sku for _, line in lines],
            [line.reserved for _, line in lines],
            [line.committed for _, line in lines],
            [line.released for _, line in lines],
        )


async def _record_movements(connection: asyncpg.Connection, movements: list[Movement]) -> None:
    if movements:
        await connection.execute(
            _RECORD_MOVEMENTS,
            [movement.sku for movement in movements],
            [movement.warehouse_id for movement in movements],
            [movement.kind.value for movement in movements],
            [movement.quantity for movement in movements],
            [movement.on_hand_change for movement in movements],
            [movement.reserved_change for movement in movements],
            [movement.order_id for movement in movements],
            [movement.reference for movement in movements],
            [movement.note for movement in movements],
        )


def _log_answers(batch: InventoryBatch) -> None:
    """One line per batch and kind of answer, not one per order: the details are at DEBUG."""
    answers = [
        reservation.status for reservation in batch.reservations.values() if reservation.created
    ]
    failed = answers.count(ReservationStatus.FAILED)
    if len(answers) > failed:
        log.info("stock reserved", orders=len(answers) - failed)
    if failed:
        log.info("stock reservation failed", orders=failed)
