"""Fulfilment's use cases: each runs in one unit of work, changes shipments and records the
events that say so."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from uuid6 import uuid7

from contracts.base import Money
from contracts.events.common import Address, SkuQuantity
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


async def create_shipments(uow: UnitOfWork, event: StockReserved, rules: FulfilmentRules) -> None:
    """One shipment per warehouse holding stock for the order, unless the order is already
    known to be cancelled; addressed to the latest address known for the order and planned
    for it (domestic or international against the warehouse's country, which the
    reservation's allocations name), with the customer's notes for the packer. Without an
    address, the shipment is a pickup the customer collects at the warehouse.

    A reservation emitted before allocations named their warehouse's country is planned
    as domestic, and that is logged once per shipment (again should a new address re-plan
    it: the country is still unknown then)."""
    facts = await db.lock_order(uow.connection, event.order_id)
    if facts.cancelled:
        log.info("order already cancelled: no shipment created", order_id=event.order_id)
        return
    address = (
        Address.model_validate(facts.shipping_address)
        if facts.shipping_address is not None
        else event.shipping_address
    )
    countries = {a.warehouse_id: a.warehouse_country for a in event.allocations}
    now = _now()
    allocations = ((a.warehouse_id, a.sku, a.quantity) for a in event.allocations)
    for warehouse_id, lines in lines_per_warehouse(allocations).items():
        quote = rules.shipping.quote(
            event.shipping_speed.value,
            warehouse_country=countries[warehouse_id],
            destination_country=address.country if address is not None else None,
            weight_grams=rules.shipping.weight_of(lines),
        )
        shipment_id = shipment_id_from(uuid7().hex)
        created = await db.insert_shipment(
            uow.connection,
            shipment_id=shipment_id,
            order_id=event.order_id,
            warehouse_id=warehouse_id,
            warehouse_country=countries[warehouse_id],
            reservation_id=event.reservation_id,
            status=ShipmentStatus.CREATED.value,
            lines=db.lines_json(lines),
            shipping_speed=event.shipping_speed.value,
            carrier=quote.carrier,
            shipping_method=quote.method,
            shipping_cost_minor=quote.cost_minor,
            shipping_cost_currency=quote.currency,
            international=quote.international,
            shipping_address=address.model_dump(mode="json") if address is not None else None,
            customer_locale=event.customer_locale,
            notes=event.notes,
            created_at=now,
            updated_at=now,
            next_step_at=_next_step_at(rules, ShipmentStatus.CREATED, now),
        )
        if not created:
            log.warning(
                "order already has a shipment from this warehouse: reservation ignored",
                order_id=event.order_id,
                warehouse_id=warehouse_id,
                reservation_id=event.reservation_id,
            )
            continue
        uow.emit(
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
        log.info(
            "shipment created",
            shipment_id=shipment_id,
            warehouse_id=warehouse_id,
            carrier=quote.carrier,
            international=quote.international,
        )


async def cancel_order_shipments(uow: UnitOfWork, event: OrderCancelled) -> None:
    """Stops every shipment of the order still in a warehouse, and remembers the
    cancellation so that shipments reserved later are never created."""
    facts = await db.lock_order(uow.connection, event.order_id)
    if not facts.cancelled:
        await db.update_order_facts(
            uow.connection,
            event.order_id,
            cancelled_at=event.occurred_at,
            cancellation_reason=event.reason.value,
        )
    now = _now()
    for shipment in await db.lock_order_shipments(uow.connection, event.order_id):
        if not is_in_warehouse(shipment.status):
            continue
        await db.update_shipment(
            uow.connection,
            shipment.shipment_id,
            status=ShipmentStatus.CANCELLED.value,
            cancelled_at=now,
            cancellation_reason=ShipmentCancellationReason.ORDER_CANCELLED.value,
            updated_at=now,
            next_step_at=None,
        )
        uow.emit(
            ShipmentCancelled(
                order_id=event.order_id,
                shipment_id=shipment.shipment_id,
                reason=ShipmentCancellationReason.ORDER_CANCELLED,
            )
        )
        log.info("shipment cancelled", shipment_id=shipment.shipment_id)


async def change_shipping_address(
    uow: UnitOfWork, event: OrderShippingAddressChanged, rules: FulfilmentRules
) -> None:
    """Re-addresses every shipment of the order still in a warehouse and plans it again
    for the new address (carrier, service level, domestic or international, cost), saying
    so with ShipmentReplanned; remembers the address for shipments reserved later. A
    shipment that left is not touched. An older change never overwrites a newer one."""
    facts = await db.lock_order(uow.connection, event.order_id)
    if facts.address_changed_at is not None and facts.address_changed_at > event.occurred_at:
        log.info("address change older than the one applied: ignored", order_id=event.order_id)
        return
    address = event.shipping_address.model_dump(mode="json")
    await db.update_order_facts(
        uow.connection,
        event.order_id,
        shipping_address=address,
        address_changed_at=event.occurred_at,
    )
    now = _now()
    for shipment in await db.lock_order_shipments(uow.connection, event.order_id):
        if not is_in_warehouse(shipment.status):
            continue
        quote = rules.shipping.quote(
            shipment.shipping_speed,
            warehouse_country=shipment.warehouse_country,
            destination_country=event.shipping_address.country,
            weight_grams=rules.shipping.weight_of(shipment.lines),
        )
        await db.update_shipment(
            uow.connection,
            shipment.shipment_id,
            shipping_address=address,
            carrier=quote.carrier,
            shipping_method=quote.method,
            shipping_cost_minor=quote.cost_minor,
            shipping_cost_currency=quote.currency,
            international=quote.international,
            updated_at=now,
        )
        uow.emit(
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
        log.info(
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
    return await _take(
        uow,
        shipment,
        Action.DELIVER,
        rules,
        _now(),
        delivered_at=delivered_at.astimezone(UTC) if delivered_at is not None else None,
    )


async def advance_next_due_shipment(uow: UnitOfWork, rules: FulfilmentRules) -> bool:
    """Takes the automatic mode's next step for the most overdue shipment; False when no
    shipment is due."""
    now = _now()
    shipment = await db.lock_next_due_shipment(uow.connection, now)
    if shipment is None:
        return False
    actions = automatic_actions(shipment.status, shipment.carrier)
    if not actions:
        await db.update_shipment(uow.connection, shipment.shipment_id, next_step_at=None)
        return True
    for action in actions:
        shipment = await _take(uow, shipment, action, rules, now)
    log.info("automatic step taken", shipment_id=shipment.shipment_id, status=shipment.status)
    return True


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
    for step in steps_of(action, shipment.carrier):
        shipment = await _take(uow, shipment, step, rules, now, parcels=parcels)
    return shipment


async def _take(
    uow: UnitOfWork,
    shipment: Shipment,
    action: Action,
    rules: FulfilmentRules,
    now: datetime,
    *,
    parcels: tuple[Parcel, ...] | None = None,
    delivered_at: datetime | None = None,
) -> Shipment:
    """Takes one allowed step: stores it and emits the event that reports it (picking
    is internal to the warehouse and reports nothing)."""
    status = reached_by(action)
    changes: dict[str, Any] = {
        "status": status,
        "updated_at": now,
        "next_step_at": _next_step_at(rules, status, now),
    }
    if action is Action.PICK:
        changes["picked_at"] = now
    elif action is Action.PACK:
        changes["packed_at"] = now
        changes["packages"] = parcels or default_parcels(rules.shipping.weight_of(shipment.lines))
        uow.emit(
            ShipmentPacked(
                order_id=shipment.order_id,
                shipment_id=shipment.shipment_id,
                packages=tuple(
                    Package(package_id=parcel.package_id, weight_grams=parcel.weight_grams)
                    for parcel in changes["packages"]
                ),
            )
        )
    elif action is Action.SHIP:
        changes["shipped_at"] = now
        changes["tracking_number"] = tracking_number(shipment.carrier, shipment.shipment_id)
        uow.emit(
            Shipped(
                order_id=shipment.order_id,
                shipment_id=shipment.shipment_id,
                warehouse_id=shipment.warehouse_id,
                carrier=shipment.carrier,
                tracking_number=changes["tracking_number"],
                lines=_contract_lines(shipment.lines),
                shipped_at=now,
            )
        )
    else:
        changes["delivered_at"] = delivered_at or now
        uow.emit(
            Delivered(
                order_id=shipment.order_id,
                shipment_id=shipment.shipment_id,
                # Always set once shipped; the fallback only narrows the type.
                tracking_number=shipment.tracking_number
                or tracking_number(shipment.carrier, shipment.shipment_id),
                delivered_at=changes["delivered_at"],
            )
        )
    stored = dict(changes, status=status.value)
    if "packages" in changes:
        stored["packages"] = db.parcels_json(changes["packages"])
    await db.update_shipment(uow.connection, shipment.shipment_id, **stored)
    log.info("shipment stepped", shipment_id=shipment.shipment_id, status=status.value)
    return dataclasses.replace(shipment, **changes)


def _contract_lines(lines: tuple[Line, ...]) -> tuple[SkuQuantity, ...]:
    return tuple(SkuQuantity(sku=line.sku, quantity=line.quantity) for line in lines)
