"""What customer service asks of an order over HTTP: cancel it, change where it goes. Each
command locks the order, asks the domain whether the order may change, and records the
change with the event saying so; a refusal changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.events.common import Address
from contracts.events.order import (
    CancellationReason,
    OrderCancelled,
    OrderShippingAddressChanged,
)
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork
from services.order import changes, db, domain, intake
from services.order.domain import OrderStatus, Refusal
from services.order.rows import ChangeCause
from services.order.submissions import IntakePolicy, shipping_address_rejections

log = get_logger(__name__)


@dataclass(frozen=True)
class Accepted:
    """A command was carried out; `changed` is False when it asked for what already was."""

    changed: bool


@dataclass(frozen=True)
class UnknownOrder:
    order_id: str


CommandOutcome = Accepted | Refusal | UnknownOrder


@dataclass(frozen=True)
class UndeliverableAddress:
    """A new shipping address that breaks its country's rules (the intake's address rules)."""

    problems: tuple[intake.Rejection, ...]


async def cancel_order(
    uow: UnitOfWork,
    order_id: str,
    *,
    reason: CancellationReason,
    cancelled_by: str,
    note: str | None,
) -> CommandOutcome:
    order = await db.lock_order(uow.connection, order_id)
    if order is None:
        return UnknownOrder(order_id)
    decision = domain.cancellation(OrderStatus(order.status))
    if isinstance(decision, Refusal):
        return decision
    await changes.apply(uow, order_id, decision, ChangeCause(actor=cancelled_by, command="cancel"))
    await changes.emit(
        uow, OrderCancelled(order_id=order_id, reason=reason, cancelled_by=cancelled_by, note=note)
    )
    log.info("order cancelled", order_id=order_id, reason=reason.value, by=cancelled_by)
    return Accepted(changed=True)


async def change_shipping_address(
    uow: UnitOfWork,
    order_id: str,
    *,
    shipping_address: Address,
    changed_by: str,
    policy: IntakePolicy,
) -> CommandOutcome | UndeliverableAddress:
    """The same address rules as intake: a change cannot make an order undeliverable."""
    order = await db.lock_order(uow.connection, order_id)
    if order is None:
        return UnknownOrder(order_id)
    refusal = domain.address_change(OrderStatus(order.status))
    if refusal is not None:
        return refusal
    problems = shipping_address_rejections(shipping_address, policy.deliverable_countries)
    if problems:
        return UndeliverableAddress(tuple(problems))
    new_address = shipping_address.model_dump(mode="json")
    if new_address == order.shipping_address:
        return Accepted(changed=False)
    await db.set_shipping_address(uow.connection, order_id, new_address)
    await changes.emit(
        uow,
        OrderShippingAddressChanged(
            order_id=order_id, shipping_address=shipping_address, changed_by=changed_by
        ),
    )
    log.info("shipping address changed", order_id=order_id, by=changed_by)
    return Accepted(changed=True)
