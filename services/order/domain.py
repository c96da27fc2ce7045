"""The order's rules, free of I/O: the status state machine, and how shipment and return
facts decide an order's status and completion. (Intake rules are in `intake.py`.)

Status changes go through one transition table (`TRANSITIONS`). Shipment and return
events do not name a target status: the target is derived from every fact recorded so
far (`derived_status`), so the result is the same whatever order the facts arrive in,
and the table then says whether the order may move there from where it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

ORDER_ID_PREFIX = "ord_"


def order_id_from(unique: UUID) -> str:
    """`ord_` + the 32 hex digits of a UUIDv7: unique, readable, and sorted by creation
    time, like the event ids."""
    return f"{ORDER_ID_PREFIX}{unique.hex}"


# --- the status state machine -------------------------------------------------------------


class OrderStatus(StrEnum):
    PLACED = "placed"
    CONFIRMED = "confirmed"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURN_REQUESTED = "return_requested"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


S = OrderStatus
_SHIPPING_PROGRESS = frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED})
_RETURN_PROGRESS = frozenset({S.RETURN_REQUESTED, S.PARTIALLY_RETURNED, S.RETURNED})

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    # Shipment facts may overtake the reservation (they travel on another topic), so an
    # order can move from placed straight to any shipping status.
    S.PLACED: frozenset({S.CONFIRMED, S.CANCELLED}) | _SHIPPING_PROGRESS,
    S.CONFIRMED: frozenset({S.CANCELLED}) | _SHIPPING_PROGRESS,
    # Returns recorded while a shipment was still out count once the rest has shipped.
    S.PARTIALLY_SHIPPED: frozenset({S.SHIPPED, S.DELIVERED}) | _RETURN_PROGRESS,
    S.SHIPPED: frozenset({S.DELIVERED}) | _RETURN_PROGRESS,
    S.DELIVERED: _RETURN_PROGRESS,
    # Back to shipped or delivered when the only open return request is rejected.
    S.RETURN_REQUESTED: frozenset({S.PARTIALLY_RETURNED, S.RETURNED, S.SHIPPED, S.DELIVERED}),
    S.PARTIALLY_RETURNED: frozenset({S.RETURN_REQUESTED, S.RETURNED}),
    S.RETURNED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}


class RefusalCode(StrEnum):
    ALREADY_CANCELLED = "already_cancelled"
    ALREADY_SHIPPED = "already_shipped"
    ORDER_REJECTED = "order_rejected"
    ORDER_COMPLETED = "order_completed"
    ALREADY_CONFIRMED = "already_confirmed"
    INVALID_TRANSITION = "invalid_transition"


@dataclass(frozen=True)
class Transition:
    from_status: OrderStatus
    to_status: OrderStatus


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    message: str


def transition(
    current: OrderStatus, target: OrderStatus, *, completed: bool = False
) -> Transition | Refusal:
    """The move from `current` to `target`, or why the order may not make it."""
    if completed:
        return Refusal(RefusalCode.ORDER_COMPLETED, "the order is completed")
    if target in TRANSITIONS[current]:
        return Transition(current, target)
    return _refusal(current, target)


def _refusal(current: OrderStatus, target: OrderStatus) -> Refusal:
    if current is S.CANCELLED:
        return Refusal(RefusalCode.ALREADY_CANCELLED, "the order is cancelled")
    if current is S.REJECTED:
        return Refusal(RefusalCode.ORDER_REJECTED, "the order was rejected at intake")
    return Refusal(RefusalCode.INVALID_TRANSITION, f"an order {current} cannot become {target}")


def _before_shipping(status: OrderStatus, what: str) -> Refusal | None:
    if status in (S.PLACED, S.CONFIRMED):
        return None
    if status is S.CANCELLED:
        return Refusal(RefusalCode.ALREADY_CANCELLED, "the order is cancelled")
    if status is S.REJECTED:
        return Refusal(RefusalCode.ORDER_REJECTED, "the order was rejected at intake")
    return Refusal(RefusalCode.ALREADY_SHIPPED, f"{what} only before anything has shipped")


def cancellation(status: OrderStatus) -> Transition | Refusal:
    """A cancellation asked by a person: only before anything shipped."""
    return _before_shipping(status, "an order can be cancelled") or Transition(status, S.CANCELLED)


def address_change(status: OrderStatus) -> Refusal | None:
    """None when the shipping address may still change."""
    return _before_shipping(status, "the shipping address can change")


def reservation_failure(status: OrderStatus) -> Transition | Refusal:
    """Stock could not be reserved: the order is cancelled, if it is still just placed
    (reservation is all or nothing, so a failure after a reservation contradicts it)."""
    if status is S.PLACED:
        return Transition(status, S.CANCELLED)
    if status in (S.CANCELLED, S.REJECTED):
        return _refusal(status, S.CANCELLED)
    return Refusal(
        RefusalCode.INVALID_TRANSITION, f"a stock reservation failure for an order {status}"
    )


@dataclass(frozen=True)
class Confirmation:
    """Stock is reserved. The status moves only from placed: shipment facts may have
    moved the order further already, and the confirmation is still recorded then."""

    transition: Transition | None


def confirmation(status: OrderStatus, *, already_confirmed: bool) -> Confirmation | Refusal:
    if already_confirmed:
        return Refusal(RefusalCode.ALREADY_CONFIRMED, "stock was already reserved")
    if status is S.PLACED:
        return Confirmation(Transition(status, S.CONFIRMED))
    if status in _SHIPPING_PROGRESS | _RETURN_PROGRESS:
        return Confirmation(None)
    return _refusal(status, S.CONFIRMED)


# --- shipments, returns and the status they imply -------------------------------------------


class ShipmentStatus(StrEnum):
    CREATED = "created"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ShipmentFacts:
    """What this service has heard of one shipment so far, in whatever order."""

    shipment_id: str
    shipped_lines: Mapping[str, int] | None
    """Units per SKU that left, once `Shipped` is known."""
    delivered_at: datetime | None
    cancelled: bool

    @property
    def counts(self) -> bool:
        """A cancelled shipment's units never count as shipped."""
        return self.shipped_lines is not None and not self.cancelled

    @property
    def status(self) -> ShipmentStatus:
        if self.cancelled:
            return ShipmentStatus.CANCELLED
        if self.shipped_lines is not None:
            return ShipmentStatus.DELIVERED if self.delivered_at else ShipmentStatus.SHIPPED
        # A delivery heard before its Shipped: delivered, though its units are not known.
        return ShipmentStatus.DELIVERED if self.delivered_at else ShipmentStatus.CREATED


@dataclass(frozen=True)
class ReturnFacts:
    return_id: str
    requested: bool
    rejected: bool
    returned_lines: Mapping[str, int] | None

    @property
    def open(self) -> bool:
        return self.requested and not self.rejected and self.returned_lines is None


def quantities(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Units per SKU; the same SKU on several lines adds up."""
    totals: Counter[str] = Counter()
    for sku, quantity in lines:
        totals[sku] += quantity
    return dict(totals)


def shipped_quantities(shipments: Iterable[ShipmentFacts]) -> dict[str, int]:
    return quantities(
        (sku, quantity)
        for shipment in shipments
        if shipment.counts and shipment.shipped_lines is not None
        for sku, quantity in shipment.shipped_lines.items()
    )


def returned_quantities(returns: Iterable[ReturnFacts]) -> dict[str, int]:
    return quantities(
        (sku, quantity)
        for facts in returns
        if facts.returned_lines is not None
        for sku, quantity in facts.returned_lines.items()
    )


class Progress(StrEnum):
    NOTHING_SHIPPED = "nothing_shipped"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


def fulfilment_progress(ordered: Mapping[str, int], shipments: Iterable[ShipmentFacts]) -> Progress:
    counted = [shipment for shipment in shipments if shipment.counts]
    if not counted:
        return Progress.NOTHING_SHIPPED
    shipped = shipped_quantities(counted)
    if any(shipped.get(sku, 0) < quantity for sku, quantity in ordered.items()):
        return Progress.PARTIALLY_SHIPPED
    if all(shipment.delivered_at is not None for shipment in counted):
        return Progress.DELIVERED
    return Progress.SHIPPED


def delivered_at(ordered: Mapping[str, int], shipments: Iterable[ShipmentFacts]) -> datetime | None:
    """When the last shipment was delivered, once the whole order is delivered."""
    shipments = list(shipments)
    if fulfilment_progress(ordered, shipments) is not Progress.DELIVERED:
        return None
    return max(
        shipment.delivered_at
        for shipment in shipments
        if shipment.counts and shipment.delivered_at is not None
    )


def derived_status(
    current: OrderStatus,
    ordered: Mapping[str, int],
    shipments: Iterable[ShipmentFacts],
    returns: Iterable[ReturnFacts],
) -> OrderStatus:
    """The status the recorded shipment and return facts call for. Before anything ships
    they say nothing, and the order keeps its status (placed, confirmed, cancelled...).
    Returns count once everything ordered has shipped: an open request wins, then
    returned units against shipped units."""
    shipments = list(shipments)
    progress = fulfilment_progress(ordered, shipments)
    if progress is Progress.NOTHING_SHIPPED:
        return current
    if progress is Progress.PARTIALLY_SHIPPED:
        return S.PARTIALLY_SHIPPED
    returns = list(returns)
    if any(facts.open for facts in returns):
        return S.RETURN_REQUESTED
    returned = returned_quantities(returns)
    if returned:
        shipped = shipped_quantities(shipments)
        fully = all(returned.get(sku, 0) >= quantity for sku, quantity in shipped.items())
        return S.RETURNED if fully else S.PARTIALLY_RETURNED
    return S.DELIVERED if progress is Progress.DELIVERED else S.SHIPPED


def status_change(
    current: OrderStatus, target: OrderStatus, *, completed: bool
) -> Transition | Refusal | None:
    """None when the facts leave the status where it is."""
    if target is current:
        return None
    return transition(current, target, completed=completed)


# --- completion ----------------------------------------------------------------------------


class FinalStatus(StrEnum):
    DELIVERED = "delivered"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


def completion(
    status: OrderStatus,
    *,
    delivered_at: datetime | None,
    completed: bool,
    now: datetime,
    return_window: timedelta,
) -> FinalStatus | None:
    """How the order ends, once nothing more can happen to it: fully returned, or
    delivered (and perhaps partly returned) with the return window closed."""
    if completed:
        return None
    if status is S.RETURNED:
        return FinalStatus.RETURNED
    if status not in (S.DELIVERED, S.PARTIALLY_RETURNED) or delivered_at is None:
        return None
    if now < delivered_at + return_window:
        return None
    return FinalStatus(status.value)
