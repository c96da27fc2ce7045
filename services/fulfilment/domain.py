"""Shipments and the rules they follow, free of I/O.

A shipment is one warehouse's share of an order. It moves forward one step at a time:

    created --pick--> picked --pack--> packed --ship--> shipped --deliver--> delivered

and can be cancelled while it is still in the warehouse (created, picked or packed).
Carrier, service level and what the carrier charges us are chosen from `RATE_TABLE`, and
chosen again when the order's address changes while the shipment is in the warehouse.

A shipment without an address is a pickup: the customer collects it at the warehouse.
It follows the same steps, except that handing it over at the counter is its collection:
shipping it delivers it at the same instant (`steps_of`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

MAX_PACKAGE_WEIGHT_GRAMS = 1_000_000
"""The heaviest parcel the shipment contracts can describe."""

PICKUP = "pickup"
"""The carrier, and the rate table's entry, of a shipment collected at the warehouse."""


class ShipmentStatus(StrEnum):
    CREATED = "created"
    PICKED = "picked"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Action(StrEnum):
    """A step that moves a shipment forward."""

    PICK = "pick"
    PACK = "pack"
    SHIP = "ship"
    DELIVER = "deliver"


_PROGRESS: tuple[ShipmentStatus, ...] = (
    ShipmentStatus.CREATED,
    ShipmentStatus.PICKED,
    ShipmentStatus.PACKED,
    ShipmentStatus.SHIPPED,
    ShipmentStatus.DELIVERED,
)
_REACHES: Mapping[Action, ShipmentStatus] = {
    Action.PICK: ShipmentStatus.PICKED,
    Action.PACK: ShipmentStatus.PACKED,
    Action.SHIP: ShipmentStatus.SHIPPED,
    Action.DELIVER: ShipmentStatus.DELIVERED,
}
_IN_WAREHOUSE = frozenset({ShipmentStatus.CREATED, ShipmentStatus.PICKED, ShipmentStatus.PACKED})


@dataclass(frozen=True)
class Refusal:
    """Why a command cannot be carried out in the shipment's current state."""

    code: str
    message: str


def refusal_of(status: ShipmentStatus, action: Action) -> Refusal | None:
    """None when `action` may be taken now; otherwise why not.

    Codes: `shipment_cancelled` (a cancelled shipment takes no action),
    `already_<status>` (the step, or a later one, is done), `not_<status>` (an earlier
    step is missing, e.g. `not_packed` for shipping a picked shipment).
    """
    if status is ShipmentStatus.CANCELLED:
        return Refusal("shipment_cancelled", f"the shipment is cancelled: cannot {action}")
    target = _REACHES[action]
    current_rank, target_rank = _PROGRESS.index(status), _PROGRESS.index(target)
    if current_rank >= target_rank:
        return Refusal(f"already_{target}", f"the shipment is already {status}")
    required = _PROGRESS[target_rank - 1]
    if current_rank < target_rank - 1:
        return Refusal(f"not_{required}", f"the shipment must be {required} to {action}")
    return None


def reached_by(action: Action) -> ShipmentStatus:
    return _REACHES[action]


def is_in_warehouse(status: ShipmentStatus) -> bool:
    """Not yet handed to the carrier and not cancelled: it can still be cancelled or
    re-addressed."""
    return status in _IN_WAREHOUSE


@dataclass(frozen=True)
class AutomaticDelays:
    """Seconds the automatic mode waits before each step, counted from the previous one."""

    pack_seconds: float
    ship_seconds: float
    deliver_seconds: float

    def after(self, status: ShipmentStatus) -> float | None:
        """The wait before the next automatic step of a shipment in `status`; None when no
        step follows (delivered, cancelled)."""
        if status in (ShipmentStatus.CREATED, ShipmentStatus.PICKED):
            return self.pack_seconds
        if status is ShipmentStatus.PACKED:
            return self.ship_seconds
        if status is ShipmentStatus.SHIPPED:
            return self.deliver_seconds
        return None


def steps_of(action: Action, carrier: str) -> tuple[Action, ...]:
    """The steps one command takes: its own, except that a pickup handed over to the
    customer is collected there and then, so shipping it also delivers it."""
    if action is Action.SHIP and carrier == PICKUP:
        return (Action.SHIP, Action.DELIVER)
    return (action,)


def automatic_actions(status: ShipmentStatus, carrier: str) -> tuple[Action, ...]:
    """What the automatic mode does next. A warehouse picks and packs in one go; the
    carrier simulation then ships and later delivers (a pickup: both at once)."""
    if status is ShipmentStatus.CREATED:
        return (Action.PICK, Action.PACK)
    if status is ShipmentStatus.PICKED:
        return (Action.PACK,)
    if status is ShipmentStatus.PACKED:
        return steps_of(Action.SHIP, carrier)
    if status is ShipmentStatus.SHIPPED:
        return (Action.DELIVER,)
    return ()


@dataclass(frozen=True)
class Rate:
    """One line of the rate table; amounts in minor units of the shipping currency."""

    carrier: str
    method: str
    tracking_prefix: str
    domestic_base: int
    domestic_per_kg: int
    international_base: int
    international_per_kg: int


RATE_TABLE: Mapping[str, Rate] = {
    # speed:     carrier    method       prefix  domestic     international
    #                                            base  /kg    base  /kg
    "standard": Rate("laposte", "colissimo", "LP", 495, 110, 1450, 390),
    "express": Rate("dhl", "express", "JD", 990, 210, 2990, 650),
    "next_day": Rate("ups", "next_day", "1Z", 1690, 290, 4490, 990),
    PICKUP: Rate(PICKUP, "collect", "PU", 0, 0, 0, 0),
}
"""Carrier and service level per shipping speed, and what the carrier charges us: a base
price plus a price per started kilogram, higher when the parcel leaves the warehouse's
country. `pickup` is for a shipment without an address, whatever its speed: nothing to
carry, nothing to pay."""


@dataclass(frozen=True)
class ShippingQuote:
    carrier: str
    method: str
    cost_minor: int
    currency: str
    international: bool
    assumed_domestic: bool = False
    """The warehouse's country was unknown: planned as domestic (see `ShippingPolicy.quote`)."""


@dataclass(frozen=True)
class ShippingPolicy:
    """The facts the rate table needs that the events do not carry."""

    currency: str
    unit_weight_grams: int

    def weight_of(self, lines: Iterable[Line]) -> int:
        return sum(line.quantity for line in lines) * self.unit_weight_grams

    def quote(
        self,
        speed: str,
        *,
        warehouse_country: str | None,
        destination_country: str | None,
        weight_grams: int,
    ) -> ShippingQuote:
        """The plan of a shipment from a warehouse in `warehouse_country` to an address
        in `destination_country`: international when the two differ.

        No destination: the customer collects the shipment at the warehouse (`pickup`,
        free, never international). No warehouse country: the shipment comes from a
        reservation emitted before reservations named their warehouses' countries, and
        is planned as domestic (`assumed_domestic`, for the caller to log)."""
        if destination_country is None:
            rate, international, assumed_domestic = RATE_TABLE[PICKUP], False, False
        else:
            rate = RATE_TABLE[speed]
            assumed_domestic = warehouse_country is None
            international = not assumed_domestic and warehouse_country != destination_country
        base, per_kg = (
            (rate.international_base, rate.international_per_kg)
            if international
            else (rate.domestic_base, rate.domestic_per_kg)
        )
        started_kilograms = max(1, math.ceil(weight_grams / 1000))
        return ShippingQuote(
            carrier=rate.carrier,
            method=rate.method,
            cost_minor=base + per_kg * started_kilograms,
            currency=self.currency,
            international=international,
            assumed_domestic=assumed_domestic,
        )


SHIPMENT_ID_PREFIX = "shp_"


def tracking_number(carrier: str, shipment_id: str) -> str:
    """The carrier's prefix followed by the shipment id's letters and digits: unique as
    long as shipment ids are (ours are `shp_` plus a UUID in hexadecimal)."""
    prefix = next(rate.tracking_prefix for rate in RATE_TABLE.values() if rate.carrier == carrier)
    body = re.sub(r"[^A-Za-z0-9]", "", shipment_id.removeprefix(SHIPMENT_ID_PREFIX)).upper()
    return prefix + body


def shipment_id_from(token: str) -> str:
    return SHIPMENT_ID_PREFIX + token


@dataclass(frozen=True)
class Line:
    """So many units of one SKU in a shipment."""

    sku: str
    quantity: int


def lines_per_warehouse(
    allocations: Iterable[tuple[str, str, int]],
) -> dict[str, tuple[Line, ...]]:
    """Groups (warehouse, sku, quantity) allocations into one set of lines per warehouse,
    adding up a SKU allocated twice in one warehouse; warehouses and SKUs keep the order
    they first appear in."""
    grouped: dict[str, dict[str, int]] = {}
    for warehouse_id, sku, quantity in allocations:
        per_sku = grouped.setdefault(warehouse_id, {})
        per_sku[sku] = per_sku.get(sku, 0) + quantity
    return {
        warehouse_id: tuple(Line(sku, quantity) for sku, quantity in per_sku.items())
        for warehouse_id, per_sku in grouped.items()
    }


@dataclass(frozen=True)
class Parcel:
    package_id: str
    weight_grams: int


def label_parcels(requested: Sequence[tuple[str | None, int]]) -> tuple[Parcel, ...]:
    """Gives every parcel an id: its own when the packer named it, else `pkg_<n>` with n
    its position (or the next free number when the packer took that name)."""
    taken = {package_id for package_id, _ in requested if package_id is not None}
    parcels: list[Parcel] = []
    for position, (package_id, weight_grams) in enumerate(requested, start=1):
        label = package_id
        if label is None:
            number = position
            while f"pkg_{number}" in taken:
                number += 1
            label = f"pkg_{number}"
            taken.add(label)
        parcels.append(Parcel(label, weight_grams))
    return tuple(parcels)


def default_parcels(weight_grams: int) -> tuple[Parcel, ...]:
    """Everything in one parcel, split evenly into as few parcels as the contract's
    weight limit allows when it is heavier than that."""
    count = max(1, math.ceil(weight_grams / MAX_PACKAGE_WEIGHT_GRAMS))
    share, remainder = divmod(weight_grams, count)
    return tuple(
        Parcel(f"pkg_{index + 1}", share + (1 if index < remainder else 0))
        for index in range(count)
    )
