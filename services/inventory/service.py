"""Inventory use cases: one function per thing the service does, changing stock and
recording the events it causes in the same transaction. A consumed event is applied to its
batch's state in memory (`batch_state` loads, locks and saves it); an HTTP command runs in
its own unit of work.

Every stock change follows one pattern: lock the rows (in (sku, warehouse) order), compute
the new levels with the domain rules, save them, write one ledger movement per change, and
emit `LowStockDetected` for any row that just fell below its threshold.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events.common import Allocation, SkuQuantity
from contracts.events.fulfilment import Shipped
from contracts.events.inventory import (
    LowStockDetected,
    Shortage,
    StockCommitted,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockRestocked,
)
from contracts.events.order import OrderCancelled, OrderPlaced
from contracts.events.returns import ReturnReceived
from services.inventory import db
from services.inventory.batch_state import RETURN, SHIPMENT, HeldReservation, InventoryBatch
from services.inventory.db import Movement, StockKey
from services.inventory.domain import (
    MovementKind,
    ReservationLine,
    ReservationStatus,
    Shortfall,
    StockLevel,
    WarehouseStock,
    account_for_return,
    account_for_shipment,
    fell_below_threshold,
    requested_quantities,
    source,
    status_after_commit,
)
from services.kit.batch import Context
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StockPolicy:
    default_low_stock_threshold: int


class UnknownWarehouse(LookupError):
    """An event names a warehouse this service was never told about: its units cannot be
    booked anywhere. Dead-lettered, so it can be replayed once the warehouse exists."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A command refused in the current state; `code` is for machines."""

    code: str
    message: str


UNKNOWN_WAREHOUSE = "unknown_warehouse"
REFERENCE_REUSED = "reference_reused"
BELOW_RESERVED = "below_reserved"


@dataclass(frozen=True, slots=True)
class StockChange:
    sku: str
    warehouse_id: str
    level: StockLevel
    duplicate: bool
    """The same reference was applied before: nothing changed this time."""


# --- Consumed events -------------------------------------------------------------------
# Each applies one event to the batch's state in memory (`batch_state`): the rows it needs
# were loaded and locked for the whole batch, and the batch saves what changed.


def reserve_for_order(batch: InventoryBatch, order: OrderPlaced, context: Context) -> None:
    """All or nothing: every line is held, or nothing is and every shortage is reported.

    What is held is reported with each warehouse's country (fulfilment plans domestic or
    international from it) and the customer's notes for the warehouse. An order without a
    shipping address (collected in store) is sourced without a destination."""
    if order.order_id in batch.reservations:
        log.debug("order already answered; nothing to reserve")
        return
    if order.order_id in batch.cancelled:
        log.debug("order was cancelled before its stock was reserved; nothing to reserve")
        return
    requested = requested_quantities((line.sku, line.quantity) for line in order.lines)
    destination = order.shipping_address.country if order.shipping_address is not None else None
    outcome = source(requested, _warehouse_stock(batch, requested), destination)
    reservation_id = f"res_{uuid.uuid4().hex}"
    if isinstance(outcome, Shortfall):
        batch.add_reservation(
            HeldReservation(
                order_id=order.order_id,
                reservation_id=reservation_id,
                status=ReservationStatus.FAILED,
                lines={},
                shortages=outcome.shortages,
            )
        )
        context.emit(
            StockReservationFailed(
                order_id=order.order_id,
                shortages=tuple(
                    Shortage(sku=short.sku, requested=short.requested, available=short.available)
                    for short in outcome.shortages
                ),
            )
        )
        log.debug("stock reservation failed", shortages=len(outcome.shortages))
        return
    after: dict[StockKey, StockLevel] = {}
    for allocation in outcome.allocations:
        key = (allocation.sku, allocation.warehouse_id)
        after[key] = batch.stock[key].reserve(allocation.quantity)
    _change_stock(
        batch,
        context,
        after,
        [
            Movement(
                sku=allocation.sku,
                warehouse_id=allocation.warehouse_id,
                kind=MovementKind.RESERVED,
                quantity=allocation.quantity,
                reserved_change=allocation.quantity,
                order_id=order.order_id,
                reference=reservation_id,
            )
            for allocation in outcome.allocations
        ],
        alert=True,
    )
    batch.add_reservation(
        HeldReservation(
            order_id=order.order_id,
            reservation_id=reservation_id,
            status=ReservationStatus.RESERVED,
            lines={
                (allocation.warehouse_id, allocation.sku): ReservationLine(
                    allocation.warehouse_id, allocation.sku, allocation.quantity
                )
                for allocation in outcome.allocations
            },
        )
    )
    context.emit(
        StockReserved(
            order_id=order.order_id,
            reservation_id=reservation_id,
            allocations=tuple(
                Allocation(
                    warehouse_id=item.warehouse_id,
                    sku=item.sku,
                    quantity=item.quantity,
                    warehouse_country=batch.warehouses[item.warehouse_id].country,
                )
                for item in outcome.allocations
            ),
            shipping_address=order.shipping_address,
            shipping_speed=order.shipping_speed,
            customer_locale=order.customer.locale,
            notes=order.notes,
        )
    )
    log.debug("stock reserved", warehouses=list(outcome.warehouse_ids))


def _warehouse_stock(batch: InventoryBatch, requested: Mapping[str, int]) -> list[WarehouseStock]:
    """What each warehouse holding any of the SKUs can give of them now."""
    available: dict[str, dict[str, int]] = {}
    for sku in requested:
        for warehouse_id in batch.warehouses_holding[sku]:
            available.setdefault(warehouse_id, {})[sku] = batch.stock[(sku, warehouse_id)].available
    return [
        WarehouseStock(
            warehouse_id, batch.warehouses[warehouse_id].location, available[warehouse_id]
        )
        for warehouse_id in sorted(available)
    ]


def release_for_cancelled_order(
    batch: InventoryBatch, cancellation: OrderCancelled, context: Context
) -> None:
    """Gives back whatever the order still holds; a shipment that already left keeps its
    units. Remembered, so nothing is reserved for the order afterwards."""
    batch.remember_cancellation(cancellation.order_id)
    reservation = batch.reservations.get(cancellation.order_id)
    if reservation is None:
        log.debug("cancelled order holds no reservation; nothing to release")
        return
    held = [line for line in reservation.lines.values() if line.open > 0]
    if not held:
        log.debug("cancelled order holds no stock any more", status=reservation.status.value)
        return
    after: dict[StockKey, StockLevel] = {}
    for line in held:
        key = (line.sku, line.warehouse_id)
        after[key] = batch.stock[key].release(line.open)
    _change_stock(
        batch,
        context,
        after,
        [
            Movement(
                sku=line.sku,
                warehouse_id=line.warehouse_id,
                kind=MovementKind.RELEASED,
                quantity=line.open,
                reserved_change=-line.open,
                order_id=reservation.order_id,
                reference=reservation.reservation_id,
            )
            for line in held
        ],
        alert=False,
    )
    batch.update_reservation(
        reservation,
        ReservationStatus.RELEASED,
        [
            ReservationLine(
                line.warehouse_id,
                line.sku,
                line.reserved,
                line.committed,
                line.released + line.open,
            )
            for line in held
        ],
    )
    context.emit(
        StockReleased(
            order_id=reservation.order_id,
            reservation_id=reservation.reservation_id,
            allocations=tuple(
                Allocation(
                    warehouse_id=line.warehouse_id,
                    sku=line.sku,
                    quantity=line.open,
                    # Reservation lines reference stock rows, which reference warehouses.
                    warehouse_country=batch.warehouses[line.warehouse_id].country,
                )
                for line in held
            ),
        )
    )
    log.debug("stock released", lines=len(held))


def commit_shipment(batch: InventoryBatch, shipped: Shipped, context: Context) -> None:
    """The shipped units leave on hand. Normally they were held for the order; when a
    cancellation released them first (the shipment raced it), they are taken from free
    stock, and whatever even that cannot cover is logged as a discrepancy."""
    if shipped.warehouse_id not in batch.warehouses:
        raise UnknownWarehouse(f"shipment from unknown warehouse {shipped.warehouse_id!r}")
    if not batch.apply_document(SHIPMENT, shipped.shipment_id):
        log.warning("shipment already committed; ignored", shipment_id=shipped.shipment_id)
        return
    reservation = batch.reservations.get(shipped.order_id)
    held = {
        line.sku: line
        for line in (reservation.lines.values() if reservation is not None else ())
        if line.warehouse_id == shipped.warehouse_id
    }
    quantities = requested_quantities((line.sku, line.quantity) for line in shipped.lines)
    after: dict[StockKey, StockLevel] = {}
    movements: list[Movement] = []
    committed: dict[str, int] = {}
    updated_lines: list[ReservationLine] = []
    for sku, quantity in sorted(quantities.items()):
        key = (sku, shipped.warehouse_id)
        line = held.get(sku)
        # A SKU the warehouse has no row of: nothing on record to ship from.
        level = batch.stock.get(key, StockLevel())
        units = account_for_shipment(quantity, line.open if line is not None else 0, level)
        if units.unaccounted:
            log.error(
                "shipped units missing from stock records",
                sku=sku,
                warehouse_id=shipped.warehouse_id,
                shipment_id=shipped.shipment_id,
                unaccounted=units.unaccounted,
            )
        if units.committed == 0:
            continue
        after[key] = level.commit(units)
        committed[sku] = units.committed
        movements.append(
            Movement(
                sku=sku,
                warehouse_id=shipped.warehouse_id,
                kind=MovementKind.COMMITTED,
                quantity=units.committed,
                on_hand_change=-units.committed,
                reserved_change=-units.from_reservation,
                order_id=shipped.order_id,
                reference=shipped.shipment_id,
                note=None if units.from_available == 0 else "shipped after release",
            )
        )
        if line is not None and units.from_reservation:
            updated_lines.append(
                ReservationLine(
                    line.warehouse_id,
                    line.sku,
                    line.reserved,
                    line.committed + units.from_reservation,
                    line.released,
                )
            )
    _change_stock(batch, context, after, movements, alert=True)
    if reservation is not None and updated_lines:
        lines = dict(reservation.lines)
        lines.update({(line.warehouse_id, line.sku): line for line in updated_lines})
        status = (
            reservation.status
            if reservation.status is ReservationStatus.RELEASED
            else status_after_commit(lines.values())
        )
        batch.update_reservation(reservation, status, updated_lines)
    if committed:
        context.emit(
            StockCommitted(
                order_id=shipped.order_id,
                shipment_id=shipped.shipment_id,
                warehouse_id=shipped.warehouse_id,
                lines=tuple(
                    SkuQuantity(sku=sku, quantity=quantity)
                    for sku, quantity in sorted(committed.items())
                ),
            )
        )
    log.debug("shipment committed", shipment_id=shipped.shipment_id, skus=len(committed))


def restock_return(batch: InventoryBatch, received: ReturnReceived, context: Context) -> None:
    """Units that passed inspection go back on hand where they arrived; the others are
    written off in the ledger, so every returned unit is accounted for."""
    warehouse_id = received.warehouse_id
    if warehouse_id not in batch.warehouses:
        raise UnknownWarehouse(f"return received at unknown warehouse {warehouse_id!r}")
    if not batch.apply_document(RETURN, received.return_id):
        log.warning("return already restocked; ignored", return_id=received.return_id)
        return
    restocked: dict[str, int] = {}
    movements: list[Movement] = []
    for line in received.lines:
        units = account_for_return(line.quantity, line.restockable_quantity)
        if units.restocked:
            restocked[line.sku] = restocked.get(line.sku, 0) + units.restocked
        if units.written_off:
            movements.append(
                Movement(
                    sku=line.sku,
                    warehouse_id=warehouse_id,
                    kind=MovementKind.WRITTEN_OFF,
                    quantity=units.written_off,
                    order_id=received.order_id,
                    reference=received.return_id,
                    note=line.note,
                )
            )
    movements.extend(
        Movement(
            sku=sku,
            warehouse_id=warehouse_id,
            kind=MovementKind.RESTOCKED,
            quantity=quantity,
            on_hand_change=quantity,
            order_id=received.order_id,
            reference=received.return_id,
        )
        for sku, quantity in sorted(restocked.items())
    )
    _change_stock(
        batch,
        context,
        # The load made a row for every SKU a new return restocks.
        {
            (sku, warehouse_id): batch.stock[(sku, warehouse_id)].receive(quantity)
            for sku, quantity in restocked.items()
        },
        movements,
        alert=False,
    )
    if restocked:
        context.emit(
            StockRestocked(
                order_id=received.order_id,
                return_id=received.return_id,
                warehouse_id=warehouse_id,
                lines=tuple(
                    SkuQuantity(sku=sku, quantity=quantity)
                    for sku, quantity in sorted(restocked.items())
                ),
            )
        )
    log.debug("return restocked", return_id=received.return_id, skus=len(restocked))


def _change_stock(
    batch: InventoryBatch,
    context: Context,
    after: Mapping[StockKey, StockLevel],
    movements: Sequence[Movement],
    *,
    alert: bool,
) -> None:
    """Sets the event's new levels and records its movements. With `alert`, also alerts on
    each level that just fell below its threshold (changes that only add stock pass
    False)."""
    before = {key: batch.stock[key] for key in after}
    changed = {key: level for key, level in after.items() if level != before[key]}
    batch.change_stock(changed, movements)
    if alert:
        for low in _low_stock_alerts(before, changed, batch.thresholds):
            context.emit(low)


# --- Commands --------------------------------------------------------------------------


async def save_warehouse(uow: UnitOfWork, warehouse: db.Warehouse) -> bool:
    """Creates or updates the warehouse; True when it is new."""
    return await db.save_warehouse(uow.connection, warehouse)


async def receive_stock(
    uow: UnitOfWork, *, sku: str, warehouse_id: str, quantity: int, reference: str
) -> StockChange | Refusal:
    """Supplier stock arriving. The delivery's reference makes it idempotent: the same
    delivery booked twice changes nothing the second time."""
    connection = uow.connection
    if not await db.warehouse_exists(connection, warehouse_id):
        return Refusal(UNKNOWN_WAREHOUSE, f"no warehouse {warehouse_id!r}")
    earlier = await db.claim_document(
        connection,
        "receipt",
        reference,
        sku=sku,
        warehouse_id=warehouse_id,
        quantity=quantity,
    )
    key = (sku, warehouse_id)
    if earlier is not None:
        return await _repeated(connection, earlier, key, quantity, f"receipt {reference!r}")
    await db.ensure_stock_rows(connection, [key])
    before = await db.lock_stock(connection, [key])
    after = {key: before[key].receive(quantity)}
    await _save(
        uow,
        before,
        after,
        [
            Movement(
                sku=sku,
                warehouse_id=warehouse_id,
                kind=MovementKind.RECEIVED,
                quantity=quantity,
                on_hand_change=quantity,
                reference=reference,
            )
        ],
        policy=None,
    )
    log.info("stock received", sku=sku, warehouse_id=warehouse_id, quantity=quantity)
    return StockChange(sku, warehouse_id, after[key], duplicate=False)


async def adjust_stock(
    uow: UnitOfWork,
    *,
    sku: str,
    warehouse_id: str,
    delta: int,
    reason: str,
    reference: str | None,
    policy: StockPolicy,
) -> StockChange | Refusal:
    """A correction after a count, damage or loss. On hand never goes below what is
    reserved for orders: those units are promised. With a reference, a repeat is a no-op."""
    connection = uow.connection
    if not await db.warehouse_exists(connection, warehouse_id):
        return Refusal(UNKNOWN_WAREHOUSE, f"no warehouse {warehouse_id!r}")
    key = (sku, warehouse_id)
    if delta > 0:
        await db.ensure_stock_rows(connection, [key])
    before = await db.lock_stock(connection, [key])
    current = before.get(key, StockLevel())
    if reference is not None:
        earlier = await db.find_document(connection, "adjustment", reference)
        if earlier is not None:
            return await _repeated(connection, earlier, key, delta, f"adjustment {reference!r}")
    if not current.can_adjust(delta):
        return Refusal(
            BELOW_RESERVED,
            f"on hand {current.on_hand} {delta:+} would fall below the {current.reserved} "
            "units reserved for orders",
        )
    if reference is not None:
        earlier = await db.claim_document(
            connection,
            "adjustment",
            reference,
            sku=sku,
            warehouse_id=warehouse_id,
            quantity=delta,
        )
        if earlier is not None:
            return await _repeated(connection, earlier, key, delta, f"adjustment {reference!r}")
    after = {key: current.adjust(delta)}
    await _save(
        uow,
        before,
        after,
        [
            Movement(
                sku=sku,
                warehouse_id=warehouse_id,
                kind=MovementKind.ADJUSTED,
                quantity=abs(delta),
                on_hand_change=delta,
                reference=reference,
                note=reason,
            )
        ],
        policy,
    )
    log.info("stock adjusted", sku=sku, warehouse_id=warehouse_id, delta=delta)
    return StockChange(sku, warehouse_id, after[key], duplicate=False)


async def _repeated(
    connection: AsyncConnection,
    earlier: db.AppliedDocument,
    key: StockKey,
    quantity: int,
    what: str,
) -> StockChange | Refusal:
    sku, warehouse_id = key
    if (earlier.sku, earlier.warehouse_id, earlier.quantity) != (sku, warehouse_id, quantity):
        return Refusal(
            REFERENCE_REUSED,
            f"{what} was already applied to {earlier.quantity} of {earlier.sku!r} "
            f"in {earlier.warehouse_id!r}",
        )
    current = await db.lock_stock(connection, [key])
    return StockChange(sku, warehouse_id, current.get(key, StockLevel()), duplicate=True)


async def set_low_stock_threshold(uow: UnitOfWork, sku: str, threshold: int) -> None:
    """Takes effect on the next change of the SKU's stock: the alert is about stock
    falling, not about the threshold moving."""
    await db.set_threshold(uow.connection, sku, threshold)


# --- Shared ----------------------------------------------------------------------------


async def _save(
    uow: UnitOfWork,
    before: Mapping[StockKey, StockLevel],
    after: Mapping[StockKey, StockLevel],
    movements: Sequence[Movement],
    policy: StockPolicy | None,
) -> None:
    """Writes the changed levels and their movements. With a policy, also alerts on each
    level that just fell below its threshold (changes that only add stock pass none)."""
    changed = {key: level for key, level in after.items() if level != before.get(key)}
    await db.save_levels(uow.connection, changed)
    await db.record_movements(uow.connection, movements)
    if policy is None or not changed:
        return
    thresholds = await db.thresholds_for(
        uow.connection, (sku for sku, _ in changed), policy.default_low_stock_threshold
    )
    for alert in _low_stock_alerts(before, changed, thresholds):
        uow.emit(alert)


def _low_stock_alerts(
    before: Mapping[StockKey, StockLevel],
    changed: Mapping[StockKey, StockLevel],
    thresholds: Mapping[str, int],
) -> list[LowStockDetected]:
    """An alert for each changed level that just fell below its SKU's threshold."""
    alerts: list[LowStockDetected] = []
    for (sku, warehouse_id), level in sorted(changed.items()):
        threshold = thresholds[sku]
        if fell_below_threshold(before[(sku, warehouse_id)], level, threshold):
            alerts.append(
                LowStockDetected(
                    sku=sku,
                    warehouse_id=warehouse_id,
                    available=level.available,
                    threshold=threshold,
                )
            )
            log.info("low stock", sku=sku, warehouse_id=warehouse_id, available=level.available)
    return alerts
