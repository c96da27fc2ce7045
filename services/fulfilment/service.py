"""Fulfilment's use cases, each changing shipments and emitting the events that say so:

- the consumed events (StockReserved, OrderCancelled, OrderShippingAddressChanged) apply
  to the state of their batch in memory (`batch_state`), with no I/O;
- the warehouses' and carriers' commands run in a unit of work of their own;
- the automatic mode's round steps the shipments it claimed, in memory as well.

A step is taken the same way whoever takes it: a warehouse, a carrier or the automatic
mode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from uuid6 import uuid7

from contracts.base import Event, Money
from contracts.events.common import SkuQuantity
from contracts.events.fulfilment import (
    Delivered,
    Package,
    ShipmentCancellationReason,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentPacked,
    ShipmentReplanned,
    Shipped,
)
from contracts.events.inventory import StockReserved
from contracts.events.order import OrderCancelled, OrderShippingAddressChanged
from services.fulfilment import db
from services.fulfilment.batch_state import BatchState
from services.fulfilment.db import Shipment
from services.fulfilment.domain import (
    Action,
    AutomaticDelays,
    Line,
    Parcel,
    Refusal,
    ShipmentStatus,
    ShippingPolicy,
    ShippingQuote,
    automatic_actions,
    default_parcels,
    is_in_warehouse,
    label_parcels,
    lines_per_warehouse,
    reached_by,
    refusal_of,
    shipment_id_from,
    steps_of,
    tracking_number,
)
from services.kit.batch import Context
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True)
class FulfilmentRules:
    shipping: ShippingPolicy
    delays: AutomaticDelays


CommandOutcome = Shipment | Refusal | None
"""The shipment after the command, why the command was refused, or None for an unknown
shipment."""


def _now() -> datetime:
    return datetime.now(UTC)


def _next_step_at(rules: FulfilmentRules, status: ShipmentStatus, now: datetime) -> datetime | None:
    """When the automatic mode would take the next step. Kept whether or not the mode is
    on, so that switching it on picks up shipments already under way."""
    delay = rules.delays.after(status)
    return now + timedelta(seconds=delay) if delay is not None else None


def create_shipments(
    state: BatchState, event: StockReserved, context: Context, rules: FulfilmentRules
) -> None:
    """One shipment per warehouse holding stock for the order, unless the order is already
    known to be cancelled; addressed to the latest address known for the order and planned
    for it (domestic or international against the warehouse's country, which the
    reservation's allocations name), with the customer's notes for the packer. Without an
    address, the shipment is a pickup the customer collects at the warehouse.

    A reservation emitted before allocations named their warehouse's country is planned
    as domestic, and that is logged once per shipment (again should a new address re-plan
    it: the country is still unknown then)."""
    facts = state.facts_of(event.order_id)
    if facts.cancelled:
        log.debug("order already cancelled: no shipment created", order_id=event.order_id)
        return
    address = (
        facts.shipping_address if facts.shipping_address is not None else event.shipping_address
    )
    stored_address = address.model_dump(mode="json") if address is not None else None
    countries = {a.warehouse_id: a.warehouse_country for a in event.allocations}
    from_warehouses = {shipment.warehouse_id for shipment in state.order_shipments(event.order_id)}
    now = context.now
    allocations = ((a.warehouse_id, a.sku, a.quantity) for a in event.allocations)
    for warehouse_id, lines in lines_per_warehouse(allocations).items():
        if warehouse_id in from_warehouses:
            log.warning(
                "order already has a shipment from this warehouse: reservation ignored",
                order_id=event.order_id,
                warehouse_id=warehouse_id,
                reservation_id=event.reservation_id,
            )
            continue
        quote = rules.shipping.quote(
            event.shipping_speed.value,
            warehouse_country=countries[warehouse_id],
            destination_country=address.country if address is not None else None,
            weight_grams=rules.shipping.weight_of(lines),
        )
        shipment_id = shipment_id_from(uuid7().hex)
        state.add_shipment(
            Shipment(
                shipment_id=shipment_id,
                order_id=event.order_id,
                warehouse_id=warehouse_id,
                warehouse_country=countries[warehouse_id],
                reservation_id=event.reservation_id,
                status=ShipmentStatus.CREATED,
                lines=lines,
                shipping_speed=event.shipping_speed.value,
                carrier=quote.carrier,
                shipping_method=quote.method,
                shipping_cost_minor=quote.cost_minor,
                shipping_cost_currency=quote.currency,
                international=quote.international,
                shipping_address=stored_address,
                customer_locale=event.customer_locale,
                notes=event.notes,
                tracking_number=None,
                packages=None,
                created_at=now,
                picked_at=None,
                packed_at=None,
                shipped_at=None,
                delivered_at=None,
                cancelled_at=None,
                cancellation_reason=None,
                updated_at=now,
                next_step_at=_next_step_at(rules, ShipmentStatus.CREATED, now),
            )
        )
        context.emit(
            ShipmentCreated(
                order_id=event.order_id,
                shipment_id=shipment_id,
                warehouse_id=warehouse_id,
                lines=_contract_lines(lines),
                carrier=quote.carrier,
                shipping_method=quote.method,
                shipping_cost=Money(amount_minor=quote.cost_minor, currency=quote.currency),
                shipping_address=address,
                international=quote.international,
                notes=event.notes,
            )
        )
        _log_assumption(quote, shipment_id, warehouse_id)
        log.debug(
            "shipment created",
            shipment_id=shipment_id,
            warehouse_id=warehouse_id,
            carrier=quote.carrier,
            international=quote.international,
        )


def cancel_order_shipments(state: BatchState, event: OrderCancelled, context: Context) -> None:
    """Stops every shipment of the order still in a warehouse, and remembers the
    cancellation so that shipments reserved later are never created."""
    facts = state.facts_of(event.order_id)
    if not facts.cancelled:
        state.record_facts(
            event.order_id,
            dataclasses.replace(
                facts, cancelled_at=event.occurred_at, cancellation_reason=event.reason.value
            ),
        )
    now = context.now
    for shipment in state.order_shipments(event.order_id):
        if not is_in_warehouse(shipment.status):
            continue
        state.update_shipment(
            dataclasses.replace(
                shipment,
                status=ShipmentStatus.CANCELLED,
                cancelled_at=now,
                cancellation_reason=ShipmentCancellationReason.ORDER_CANCELLED.value,
                updated_at=now,
                next_step_at=None,
            )
        )
        context.emit(
            ShipmentCancelled(
                order_id=event.order_id,
                shipment_id=shipment.shipment_id,
                reason=ShipmentCancellationReason.ORDER_CANCELLED,
            )
        )
        log.debug("shipment cancelled", shipment_id=shipment.shipment_id)


def change_shipping_address(
    state: BatchState,
    event: OrderShippingAddressChanged,
    context: Context,
    rules: FulfilmentRules,
) -> None:
    """Re-addresses every shipment of the order still in a warehouse and plans it again
    for the new address (carrier, service level, domestic or international, cost), saying
    so with ShipmentReplanned; remembers the address for shipments reserved later. A
    shipment that left is not touched. An older change never overwrites a newer one."""
    facts = state.facts_of(event.order_id)
    if facts.address_changed_at is not None and facts.address_changed_at > event.occurred_at:
        log.debug("address change older than the one applied: ignored", order_id=event.order_id)
        return
    state.record_facts(
        event.order_id,
        dataclasses.replace(
            facts,
            shipping_address=event.shipping_address,
            address_changed_at=event.occurred_at,
        ),
    )
    address = event.shipping_address.model_dump(mode="json")
    now = context.now
    for shipment in state.order_shipments(event.order_id):
        if not is_in_warehouse(shipment.status):
            continue
        quote = rules.shipping.quote(
            shipment.shipping_speed,
            warehouse_country=shipment.warehouse_country,
            destination_country=event.shipping_address.country,
            weight_grams=rules.shipping.weight_of(shipment.lines),
        )
        state.update_shipment(
            dataclasses.replace(
                shipment,
                shipping_address=address,
                carrier=quote.carrier,
                shipping_method=quote.method,
                shipping_cost_minor=quote.cost_minor,
                shipping_cost_currency=quote.currency,
                international=quote.international,
                updated_at=now,
            )
        )
        context.emit(
            ShipmentReplanned(
                order_id=event.order_id,
                shipment_id=shipment.shipment_id,
                warehouse_id=shipment.warehouse_id,
                shipping_address=event.shipping_address,
                carrier=quote.carrier,
                shipping_method=quote.method,
                shipping_cost=Money(amount_minor=quote.cost_minor, currency=quote.currency),
                international=quote.international,
                previous_carrier=shipment.carrier,
                previous_shipping_cost=Money(
                    amount_minor=shipment.shipping_cost_minor,
                    currency=shipment.shipping_cost_currency,
                ),
            )
        )
        _log_assumption(quote, shipment.shipment_id, shipment.warehouse_id)
        log.debug(
            "shipment re-planned",
            shipment_id=shipment.shipment_id,
            carrier=quote.carrier,
            international=quote.international,
        )


def _log_assumption(quote: ShippingQuote, shipment_id: str, warehouse_id: str) -> None:
    if quote.assumed_domestic:
        log.warning(
            "warehouse country unknown (reservation from before allocations named it): "
            "planned as domestic",
            shipment_id=shipment_id,
            warehouse_id=warehouse_id,
        )


async def pick(uow: UnitOfWork, shipment_id: str, rules: FulfilmentRules) -> CommandOutcome:
    return await _command(uow, shipment_id, Action.PICK, rules)


async def pack(
    uow: UnitOfWork,
    shipment_id: str,
    requested_parcels: Sequence[tuple[str | None, int]] | None,
    rules: FulfilmentRules,
) -> CommandOutcome:
    """Packs into the parcels the packer lists, or into one parcel weighed by the unit
    weight when they list none."""
    parcels = label_parcels(requested_parcels) if requested_parcels else None
    return await _command(uow, shipment_id, Action.PACK, rules, parcels=parcels)


async def ship(uow: UnitOfWork, shipment_id: str, rules: FulfilmentRules) -> CommandOutcome:
    return await _command(uow, shipment_id, Action.SHIP, rules)


async def record_delivery(
    uow: UnitOfWork, tracking: str, delivered_at: datetime | None, rules: FulfilmentRules
) -> CommandOutcome:
    """The carrier says the parcel arrived. Reported twice, it is delivered once: the
    repeat changes nothing and is not refused."""
    shipment = await db.lock_shipment_by_tracking_number(uow.connection, tracking)
    if shipment is None:
        return None
    refusal = refusal_of(shipment.status, Action.DELIVER)
    if refusal is not None:
        return shipment if shipment.status is ShipmentStatus.DELIVERED else refusal
    delivered = _take_step(
        shipment,
        Action.DELIVER,
        rules,
        _now(),
        uow.emit,
        delivered_at=delivered_at.astimezone(UTC) if delivered_at is not None else None,
    )
    await db.update_shipment(uow.connection, shipment, delivered)
    log.info("shipment stepped", shipment_id=shipment.shipment_id, status=delivered.status.value)
    return delivered


def advance_due_shipments(
    claimed: Sequence[Shipment], rules: FulfilmentRules, context: Context
) -> list[Shipment]:
    """The automatic mode's round: takes every step of each claimed shipment that is due
    by the round's time, in order (with no delay configured, created to delivered at
    once), emitting what each step reports; returns the shipments after their steps."""
    return [_advance_while_due(shipment, rules, context) for shipment in claimed]


def _advance_while_due(shipment: Shipment, rules: FulfilmentRules, context: Context) -> Shipment:
    while shipment.next_step_at is not None and shipment.next_step_at <= context.now:
        actions = automatic_actions(shipment.status, shipment.carrier)
        if not actions:
            return dataclasses.replace(shipment, next_step_at=None)
        for action in actions:
            shipment = _take_step(shipment, action, rules, context.now, context.emit)
        log.debug("automatic step taken", shipment_id=shipment.shipment_id, status=shipment.status)
    return shipment


async def find_shipment(uow: UnitOfWork, shipment_id: str) -> Shipment | None:
    return await db.get_shipment(uow.connection, shipment_id)


async def find_order_shipments(uow: UnitOfWork, order_id: str) -> list[Shipment]:
    return await db.order_shipments(uow.connection, order_id)


async def _command(
    uow: UnitOfWork,
    shipment_id: str,
    action: Action,
    rules: FulfilmentRules,
    *,
    parcels: tuple[Parcel, ...] | None = None,
) -> CommandOutcome:
    shipment = await db.lock_shipment(uow.connection, shipment_id)
    if shipment is None:
        return None
    refusal = refusal_of(shipment.status, action)
    if refusal is not None:
        return refusal
    now = _now()
    stepped = shipment
    for step in steps_of(action, shipment.carrier):
        stepped = _take_step(stepped, step, rules, now, uow.emit, parcels=parcels)
    await db.update_shipment(uow.connection, shipment, stepped)
    log.info("shipment stepped", shipment_id=shipment_id, status=stepped.status.value)
    return stepped


def _take_step(
    shipment: Shipment,
    action: Action,
    rules: FulfilmentRules,
    now: datetime,
    emit: Callable[[Event], None],
    *,
    parcels: tuple[Parcel, ...] | None = None,
    delivered_at: datetime | None = None,
) -> Shipment:
    """Takes one allowed step: returns the shipment after it, and emits the event that
    reports it (picking is internal to the warehouse and reports nothing)."""
    status = reached_by(action)
    stepped = dataclasses.replace(
        shipment, status=status, updated_at=now, next_step_at=_next_step_at(rules, status, now)
    )
    if action is Action.PICK:
        return dataclasses.replace(stepped, picked_at=now)
    if action is Action.PACK:
        packages = parcels or default_parcels(rules.shipping.weight_of(shipment.lines))
        emit(
            ShipmentPacked(
                order_id=shipment.order_id,
                shipment_id=shipment.shipment_id,
                packages=tuple(
                    Package(package_id=parcel.package_id, weight_grams=parcel.weight_grams)
                    for parcel in packages
                ),
            )
        )
        return dataclasses.replace(stepped, packed_at=now, packages=packages)
    if action is Action.SHIP:
        tracking = tracking_number(shipment.carrier, shipment.shipment_id)
        emit(
            Shipped(
                order_id=shipment.order_id,
                shipment_id=shipment.shipment_id,
                warehouse_id=shipment.warehouse_id,
                carrier=shipment.carrier,
                tracking_number=tracking,
                lines=_contract_lines(shipment.lines),
                shipped_at=now,
            )
        )
        return dataclasses.replace(stepped, shipped_at=now, tracking_number=tracking)
    delivered = delivered_at or now
    emit(
        Delivered(
            order_id=shipment.order_id,
            shipment_id=shipment.shipment_id,
            # Always set once shipped; the fallback only narrows the type.
            tracking_number=shipment.tracking_number
            or tracking_number(shipment.carrier, shipment.shipment_id),
            delivered_at=delivered,
        )
    )
    return dataclasses.replace(stepped, delivered_at=delivered)


def _contract_lines(lines: tuple[Line, ...]) -> tuple[SkuQuantity, ...]:
    return tuple(SkuQuantity(sku=line.sku, quantity=line.quantity) for line in lines)
