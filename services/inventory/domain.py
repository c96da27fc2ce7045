"""Inventory rules, free of I/O: where an order's units come from (sourcing), how a stock
level moves when units are reserved, released, shipped, returned or counted, and when a
level has just dropped below its reorder threshold."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float


def distance_km(origin: Location, destination: Location) -> float:
    """Great-circle distance (haversine): good enough to rank warehouses by closeness."""
    lat1, lon1 = math.radians(origin.latitude), math.radians(origin.longitude)
    lat2, lon2 = math.radians(destination.latitude), math.radians(destination.longitude)
    half_chord = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(half_chord)))


COUNTRY_CENTROIDS: Mapping[str, Location] = {
    # Approximate geographic centres; a shipping address carries no coordinates, and a
    # country's centre ranks warehouses well enough for an order going there.
    "AT": Location(47.52, 14.55),
    "BE": Location(50.50, 4.47),
    "BG": Location(42.73, 25.49),
    "CY": Location(35.13, 33.43),
    "CZ": Location(49.82, 15.47),
    "DE": Location(51.17, 10.45),
    "DK": Location(56.26, 9.50),
    "EE": Location(58.60, 25.01),
    "ES": Location(40.46, -3.75),
    "FI": Location(61.92, 25.75),
    "FR": Location(46.23, 2.21),
    "GR": Location(39.07, 21.82),
    "HR": Location(45.10, 15.20),
    "HU": Location(47.16, 19.50),
    "IE": Location(53.41, -8.24),
    "IT": Location(41.87, 12.57),
    "LT": Location(55.17, 23.88),
    "LU": Location(49.82, 6.13),
    "LV": Location(56.88, 24.60),
    "MT": Location(35.94, 14.38),
    "NL": Location(52.13, 5.29),
    "PL": Location(51.92, 19.15),
    "PT": Location(39.40, -8.22),
    "RO": Location(45.94, 24.97),
    "SE": Location(60.13, 18.64),
    "SI": Location(46.15, 14.99),
    "SK": Location(48.67, 19.70),
    "GB": Location(55.38, -3.44),
    "CH": Location(46.82, 8.23),
    "NO": Location(60.47, 8.47),
    "IS": Location(64.96, -19.02),
    "LI": Location(47.17, 9.56),
    "US": Location(37.09, -95.71),
    "CA": Location(56.13, -106.35),
}


def country_centroid(country: str) -> Location | None:
    return COUNTRY_CENTROIDS.get(country)


# --- Sourcing --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WarehouseStock:
    """What one warehouse can give right now, per SKU (available = on hand - reserved)."""

    warehouse_id: str
    location: Location
    available: Mapping[str, int]

    def can_give(self, sku: str) -> int:
        return max(0, self.available.get(sku, 0))


@dataclass(frozen=True, slots=True, order=True)
class Allocation:
    warehouse_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Shortage:
    sku: str
    requested: int
    available: int


@dataclass(frozen=True, slots=True)
class SourcingPlan:
    """Every requested unit has a warehouse; allocations sorted by warehouse, then SKU."""

    allocations: tuple[Allocation, ...]

    @property
    def warehouse_ids(self) -> tuple[str, ...]:
        return tuple(sorted({allocation.warehouse_id for allocation in self.allocations}))


@dataclass(frozen=True, slots=True)
class Shortfall:
    """At least one SKU cannot be filled from all warehouses together; nothing is held."""

    shortages: tuple[Shortage, ...]


def requested_quantities(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Units wanted per SKU; an order may list one SKU on several lines."""
    wanted: dict[str, int] = {}
    for sku, quantity in lines:
        wanted[sku] = wanted.get(sku, 0) + quantity
    return wanted


def source(
    requested: Mapping[str, int],
    warehouses: Sequence[WarehouseStock],
    destination_country: str | None,
) -> SourcingPlan | Shortfall:
    """All or nothing: one warehouse that fills every line, the nearest such; otherwise
    as few warehouses as a greedy pick by coverage finds (the one that can give the most
    of what is still missing first, the nearer on a tie). Without a destination (an order
    collected in store) or with one whose country has no known centre, warehouses are
    ranked by id instead of distance: the same rules then pick the first single warehouse
    by id that fills every line, else split by coverage with ties to the lower id, so the
    outcome is still deterministic."""
    shortages = tuple(
        Shortage(sku, quantity, sum(warehouse.can_give(sku) for warehouse in warehouses))
        for sku, quantity in sorted(requested.items())
        if sum(warehouse.can_give(sku) for warehouse in warehouses) < quantity
    )
    if shortages:
        return Shortfall(shortages)
    destination = None if destination_country is None else country_centroid(destination_country)
    ranked = sorted(warehouses, key=_closeness(destination))
    for warehouse in ranked:
        if all(warehouse.can_give(sku) >= quantity for sku, quantity in requested.items()):
            return SourcingPlan(
                tuple(
                    Allocation(warehouse.warehouse_id, sku, quantity)
                    for sku, quantity in sorted(requested.items())
                )
            )
    return SourcingPlan(tuple(sorted(_split(requested, ranked))))


def _closeness(destination: Location | None) -> Callable[[WarehouseStock], tuple[float, str]]:
    def key(warehouse: WarehouseStock) -> tuple[float, str]:
        distance = 0.0 if destination is None else distance_km(warehouse.location, destination)
        return (distance, warehouse.warehouse_id)

    return key


def _split(requested: Mapping[str, int], ranked: Sequence[WarehouseStock]) -> list[Allocation]:
    missing = {sku: quantity for sku, quantity in requested.items() if quantity > 0}
    remaining = list(ranked)
    allocations: list[Allocation] = []
    while missing:
        # `ranked` is nearest first and max() keeps the first of equals: ties go to
        # the nearer warehouse.
        best = max(
            remaining,
            key=lambda warehouse: sum(
                min(quantity, warehouse.can_give(sku)) for sku, quantity in missing.items()
            ),
        )
        remaining.remove(best)
        for sku in sorted(missing):
            given = min(missing[sku], best.can_give(sku))
            if given > 0:
                allocations.append(Allocation(best.warehouse_id, sku, given))
                missing[sku] -= given
        missing = {sku: quantity for sku, quantity in missing.items() if quantity > 0}
    return allocations


# --- Stock levels ----------------------------------------------------------------------


class StockRuleViolation(ValueError):
    """A movement the stock level cannot take. Use cases check first, so this is a bug."""


@dataclass(frozen=True, slots=True)
class StockLevel:
    """One SKU in one warehouse. Invariant: 0 ≤ reserved ≤ on_hand."""

    on_hand: int = 0
    reserved: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.reserved <= self.on_hand:
            raise StockRuleViolation(
                f"reserved ({self.reserved}) must be within 0..on_hand ({self.on_hand})"
            )

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def receive(self, quantity: int) -> StockLevel:
        return StockLevel(self.on_hand + _positive(quantity), self.reserved)

    def reserve(self, quantity: int) -> StockLevel:
        if _positive(quantity) > self.available:
            raise StockRuleViolation(f"cannot reserve {quantity}, {self.available} available")
        return StockLevel(self.on_hand, self.reserved + quantity)

    def release(self, quantity: int) -> StockLevel:
        if _positive(quantity) > self.reserved:
            raise StockRuleViolation(f"cannot release {quantity}, {self.reserved} reserved")
        return StockLevel(self.on_hand, self.reserved - quantity)

    def commit(self, shipped: ShippedUnits) -> StockLevel:
        """Units left the building: those held for the order leave on hand and reserved
        together; those taken from free stock leave on hand only."""
        return StockLevel(
            self.on_hand - shipped.from_reservation - shipped.from_available,
            self.reserved - shipped.from_reservation,
        )

    def can_adjust(self, delta: int) -> bool:
        """A count may correct on hand, but never below what is promised to orders."""
        return self.on_hand + delta >= self.reserved

    def adjust(self, delta: int) -> StockLevel:
        if not self.can_adjust(delta):
            raise StockRuleViolation(f"on hand {self.on_hand}{delta:+} is below reserved")
        return StockLevel(self.on_hand + delta, self.reserved)


def _positive(quantity: int) -> int:
    if quantity <= 0:
        raise StockRuleViolation(f"a movement needs a positive quantity, not {quantity}")
    return quantity


@dataclass(frozen=True, slots=True)
class ShippedUnits:
    """How the units of one shipped line are accounted for in one warehouse."""

    from_reservation: int
    """Held for this order: they leave on hand and reserved."""
    from_available: int
    """Shipped although no longer held (the reservation was released by a cancellation
    that raced the shipment): taken from free stock."""
    unaccounted: int
    """Shipped units the warehouse's records cannot cover at all: a discrepancy for a
    person to look at (a stock count), never a negative level."""

    @property
    def committed(self) -> int:
        return self.from_reservation + self.from_available


def account_for_shipment(shipped: int, held_for_order: int, level: StockLevel) -> ShippedUnits:
    """`held_for_order` is what the order's reservation still holds at this warehouse."""
    from_reservation = min(shipped, held_for_order, level.reserved)
    from_available = min(shipped - from_reservation, level.available)
    return ShippedUnits(
        from_reservation=from_reservation,
        from_available=from_available,
        unaccounted=shipped - from_reservation - from_available,
    )


@dataclass(frozen=True, slots=True)
class ReturnedUnits:
    restocked: int
    written_off: int


def account_for_return(received: int, restockable: int) -> ReturnedUnits:
    """Units that passed inspection go back on the shelf; the rest are written off."""
    restocked = max(0, min(received, restockable))
    return ReturnedUnits(restocked=restocked, written_off=received - restocked)


def fell_below_threshold(before: StockLevel, after: StockLevel, threshold: int) -> bool:
    """True only for the change that crosses the threshold, so a SKU selling down one
    unit at a time raises one alert, not one per sale."""
    return before.available >= threshold > after.available


class MovementKind(StrEnum):
    """Why a stock level moved, as the ledger records it."""

    RECEIVED = "received"
    ADJUSTED = "adjusted"
    RESERVED = "reserved"
    RELEASED = "released"
    COMMITTED = "committed"
    RESTOCKED = "restocked"
    WRITTEN_OFF = "written_off"
    """Returned units that failed inspection: recorded, never put back on hand."""


# --- Reservations ----------------------------------------------------------------------


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    PARTIALLY_COMMITTED = "partially_committed"
    COMMITTED = "committed"
    RELEASED = "released"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ReservationLine:
    warehouse_id: str
    sku: str
    reserved: int
    committed: int = 0
    released: int = 0

    @property
    def open(self) -> int:
        """Still held for the order."""
        return self.reserved - self.committed - self.released


def status_after_commit(lines: Iterable[ReservationLine]) -> ReservationStatus:
    held = list(lines)
    if any(line.open > 0 for line in held):
        if any(line.committed > 0 for line in held):
            return ReservationStatus.PARTIALLY_COMMITTED
        return ReservationStatus.RESERVED
    return ReservationStatus.COMMITTED
