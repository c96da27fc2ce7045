"""The order service's use cases: one async function per thing it does, each running in
one unit of work that changes the order's tables and emits the events saying so.

Every use case about an existing order locks the order's row first, so the events of one
order coming in on different topics, and HTTP commands about it, take turns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.base import Event, Money, OrderEvent, new_event_id
from contracts.events import order as order_events
from contracts.events.channel import OrderSubmitted
from contracts.events.common import Address, Customer, OrderLine, OrderPricing, SkuQuantity
from contracts.events.fulfilment import (
    Delivered,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentReplanned,
    Shipped,
)
from contracts.events.inventory import StockReservationFailed, StockReserved
from contracts.events.notification import NotificationOutcome, NotificationSent
from contracts.events.order import (
    CancellationReason,
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderRejectionCode,
    OrderRejectionReason,
    OrderShippingAddressChanged,
)
from contracts.events.pricing import DiscountAllocation, ShippingLine, TaxLine
from contracts.events.returns import RefundIssued, Returned, ReturnRejected, ReturnRequested
from contracts.wire import MAX_EVENT_BYTES
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork
from services.order import addresses, db, domain, intake, timeline
from services.order.domain import OrderStatus, Refusal, Transition
from services.order.views import (
    LineView,
    NotificationView,
    OrderCursor,
    OrderPage,
    OrderSummary,
    OrderView,
    ProductView,
    RefundView,
    RejectionReasonView,
    RequestedReturnLineView,
    ReturnView,
    ShipmentView,
    StatusChangeView,
    TimelineEntryView,
)

log = get_logger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_REJECTION_REASONS = 100
"""OrderRejected carries at most this many reasons; the first ones found are kept."""


@dataclass(frozen=True)
class ChangeCause:
    """Why a status changed, for the status history: a consumed event or a command."""

    actor: str
    event_id: UUID | None = None
    command: str | None = None


@dataclass(frozen=True)
class IntakePolicy:
    deliverable_countries: frozenset[str]
    """Countries we deliver to; empty means every country."""


class IntakeOutcome(StrEnum):
    PLACED = "placed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class IntakeResult:
    outcome: IntakeOutcome
    order_id: str
    reasons: tuple[OrderRejectionReason, ...] = ()


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


class InconsistentOrderState(RuntimeError):
    """The database contradicts itself about an order (a bug, never expected)."""


# --- intake ---------------------------------------------------------------------------------


async def submit_order(
    uow: UnitOfWork, submitted: OrderSubmitted, policy: IntakePolicy, cause: ChangeCause
) -> IntakeResult:
    """Places or rejects a channel's order, once per (channel, external_order_id). Both
    ways in (the channel topic and POST /orders) come here."""
    connection = uow.connection
    existing = await db.order_by_channel_id(
        connection, submitted.channel, submitted.external_order_id
    )
    if existing is not None:
        duplicate = _duplicate(existing)
        await _record_submission(uow, submitted, duplicate, cause)
        return duplicate
    unstorable = _unstorable_text(submitted)
    if unstorable:
        result = await _store_contract_rejection(
            uow,
            OrderRejected(
                order_id=domain.order_id_from(new_event_id()),
                channel=submitted.channel,
                external_order_id=submitted.external_order_id,
                reasons=unstorable,
            ),
            cause,
        )
        await _record_submission(uow, submitted, result, cause)
        return result
    sellable = await db.sellable_skus(connection, {line.sku for line in submitted.lines})
    submission = intake_submission(submitted)
    rejections = intake.rejections(
        submission,
        sellable_skus=sellable,
        address_rejections=shipping_address_rejections(
            submitted.shipping_address, policy.deliverable_countries
        ),
    )
    reasons = tuple(
        OrderRejectionReason(
            code=OrderRejectionCode(rejection.code.value),
            field=rejection.field,
            message=rejection.message,
        )
        for rejection in rejections[:MAX_REJECTION_REASONS]
    )
    order_id = domain.order_id_from(new_event_id())
    status = OrderStatus.REJECTED if reasons else OrderStatus.PLACED
    values: dict[str, db.JsonValue] = {
        "order_id": order_id,
        "channel": submitted.channel,
        "external_order_id": submitted.external_order_id,
        "status": status.value,
        "customer": submitted.customer.model_dump(mode="json"),
        "shipping_address": _json_or_none(submitted.shipping_address),
        "shipping_speed": submitted.shipping_speed.value,
        "placed_at": submitted.submitted_at,
        "placed_by": submitted.placed_by,
        "notes": submitted.notes,
    }
    placed = None
    if reasons:
        values["rejection_reasons"] = [reason.model_dump(mode="json") for reason in reasons]
    else:
        placed = _placed(order_id, submitted, intake.totals(submission))
        values |= {
            "currency": placed.currency,
            "subtotal_minor": placed.subtotal.amount_minor,
            "shipping_charge_minor": placed.shipping_charge.amount_minor,
            "total_minor": placed.total.amount_minor,
            "total_discounts_minor": _minor(placed.total_discounts),
            "total_tax_minor": _minor(placed.total_tax),
            "pricing": placed.model_dump(mode="json", include=STORED_PRICING),
        }
    if not await db.insert_order(connection, values):
        concurrent = await _concurrent_duplicate(
            uow, submitted.channel, submitted.external_order_id
        )
        await _record_submission(uow, submitted, concurrent, cause)
        return concurrent
    await db.record_status(
        connection,
        order_id,
        None,
        status.value,
        cause_event_id=cause.event_id,
        command=cause.command,
        actor=cause.actor,
    )
    if placed is None:
        await _record_submission(
            uow, submitted, IntakeResult(IntakeOutcome.REJECTED, order_id, reasons), cause
        )
        await _emit(
            uow,
            OrderRejected(
                order_id=order_id,
                channel=submitted.channel,
                external_order_id=submitted.external_order_id,
                reasons=reasons,
            ),
        )
        log.info(
            "order rejected",
            order_id=order_id,
            codes=sorted({reason.code.value for reason in reasons}),
        )
        return IntakeResult(IntakeOutcome.REJECTED, order_id, reasons)
    await db.insert_lines(connection, order_id, [_line_row(line) for line in placed.lines])
    await _record_submission(uow, submitted, IntakeResult(IntakeOutcome.PLACED, order_id), cause)
    await _emit(uow, placed)
    log.info("order placed", order_id=order_id, channel=submitted.channel)
    return IntakeResult(IntakeOutcome.PLACED, order_id)


async def reject_contract_violation(
    uow: UnitOfWork, raw: bytes, error: str, cause: ChangeCause
) -> bool:
    """Answers a channel record that breaks the inbound contract with OrderRejected
    (contract_violation), when its channel and external order id can still be read.
    False when they cannot, or when the record is over the size limit (it is not read at
    all then): the record is then a dead letter."""
    if len(raw) > MAX_EVENT_BYTES:
        return False
    try:
        payload = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(payload, dict):
        return False
    try:
        rejected = OrderRejected.model_validate(
            {
                "order_id": domain.order_id_from(new_event_id()),
                "channel": payload.get("channel"),
                "external_order_id": payload.get("external_order_id"),
                "reasons": _contract_violations(raw, error),
            }
        )
    except ValidationError:
        return False
    await _store_contract_rejection(uow, rejected, cause)
    return True


async def _store_contract_rejection(
    uow: UnitOfWork, rejected: OrderRejected, cause: ChangeCause
) -> IntakeResult:
    """Keeps nothing of a submission that broke the contract but its identity and the
    reasons (the rest may not even be storable), and announces the rejection."""
    connection = uow.connection
    existing = await db.order_by_channel_id(
        connection, rejected.channel, rejected.external_order_id
    )
    if existing is not None:
        return _duplicate(existing)
    inserted = await db.insert_order(
        connection,
        {
            "order_id": rejected.order_id,
            "channel": rejected.channel,
            "external_order_id": rejected.external_order_id,
            "status": OrderStatus.REJECTED.value,
            "rejection_reasons": [reason.model_dump(mode="json") for reason in rejected.reasons],
        },
    )
    if not inserted:
        return await _concurrent_duplicate(uow, rejected.channel, rejected.external_order_id)
    await db.record_status(
        connection,
        rejected.order_id,
        None,
        OrderStatus.REJECTED.value,
        cause_event_id=cause.event_id,
        command=cause.command,
        actor=cause.actor,
    )
    await _emit(uow, rejected)
    log.info("order rejected for breaking the contract", order_id=rejected.order_id)
    return IntakeResult(IntakeOutcome.REJECTED, rejected.order_id, rejected.reasons)


def _unstorable_text(submitted: OrderSubmitted) -> tuple[OrderRejectionReason, ...]:
    """Text with NUL characters passes the contract but PostgreSQL cannot store it:
    a contract violation of its own, one reason per field."""
    return tuple(
        OrderRejectionReason(
            code=OrderRejectionCode.CONTRACT_VIOLATION,
            field=path[:256],
            message="contains a NUL character (U+0000), which is not accepted in text",
        )
        for path in nul_paths(submitted.model_dump(mode="json"))[:MAX_REJECTION_REASONS]
    )


def nul_paths(value: object, path: str = "") -> list[str]:
    """Dotted paths of the strings in decoded JSON that hold a NUL character."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in nul_paths(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list | tuple):
        return [
            found
            for index, item in enumerate(value)
            for found in nul_paths(item, f"{path}.{index}" if path else str(index))
        ]
    return []


async def _record_submission(
    uow: UnitOfWork, submitted: OrderSubmitted, result: IntakeResult, cause: ChangeCause
) -> None:
    await _record_entry(
        uow,
        result.order_id,
        timeline.entry(
            submitted,
            extra={
                "via": "http" if cause.command else "kafka",
                "outcome": result.outcome.value,
            },
        ),
    )


def _contract_violations(raw: bytes, error: str) -> tuple[OrderRejectionReason, ...]:
    """One reason per violation, with the offending field; the decoder's own message
    when the payload itself is fine and the record's headers are at fault."""
    try:
        OrderSubmitted.model_validate_json(raw)
    except ValidationError as invalid:
        violations = invalid.errors(include_url=False, include_input=False, include_context=False)
        return tuple(
            OrderRejectionReason(
                code=OrderRejectionCode.CONTRACT_VIOLATION,
                field=".".join(str(part) for part in violation["loc"])[:256] or None,
                message=violation["msg"][:2000],
            )
            for violation in violations[:MAX_REJECTION_REASONS]
        )
    return (
        OrderRejectionReason(
            code=OrderRejectionCode.CONTRACT_VIOLATION, field=None, message=error[:2000]
        ),
    )


def _duplicate(existing: RowMapping) -> IntakeResult:
    # A retry or replay of a channel order is a duplicate of effect: nothing new happens.
    log.info(
        "duplicate submission ignored",
        order_id=existing["order_id"],
        channel=existing["channel"],
        external_order_id=existing["external_order_id"],
        status=existing["status"],
    )
    return IntakeResult(IntakeOutcome.DUPLICATE, existing["order_id"])


async def _concurrent_duplicate(
    uow: UnitOfWork, channel: str, external_order_id: str
) -> IntakeResult:
    existing = await db.order_by_channel_id(uow.connection, channel, external_order_id)
    if existing is None:
        raise InconsistentOrderState(f"{channel}:{external_order_id} conflicted but is not there")
    return _duplicate(existing)


STORED_PRICING = set(OrderPricing.model_fields) - {"total_discounts", "total_tax"}
"""The money fields kept as one JSON document; the two totals have columns of their own."""


def intake_submission(submitted: OrderSubmitted) -> intake.Submission:
    """The submission as the intake rules read it (amounts and discounts, nothing else)."""
    return intake.Submission(
        currency=submitted.currency,
        lines=tuple(
            intake.Line(
                line_id=line.line_id,
                sku=line.sku,
                quantity=line.quantity,
                unit_price=_money(line.unit_price),
                line_total=_money(line.line_total),
                allocations=_allocations(line.discount_allocations),
                discounted_total=_maybe_money(line.discounted_total),
                taxes=_taxes(line.tax_lines),
            )
            for line in submitted.lines
        ),
        subtotal=_money(submitted.subtotal),
        shipping_charge=_money(submitted.shipping_charge),
        total=_money(submitted.total),
        shipping_lines=tuple(
            intake.ShippingLine(
                price=_money(shipping.price),
                allocations=_allocations(shipping.discount_allocations),
                discounted_price=_maybe_money(shipping.discounted_price),
                taxes=_taxes(shipping.tax_lines),
            )
            for shipping in submitted.shipping_lines
        ),
        charges=tuple(
            intake.Charge(amount=_money(charge.amount), taxes=_taxes(charge.tax_lines))
            for charge in submitted.charges
        ),
        discounts=tuple(
            intake.Discount(discount.discount_id, discount.kind.value, discount.title)
            for discount in submitted.discounts
        ),
        taxes_included=submitted.taxes_included,
        total_discounts=_maybe_money(submitted.total_discounts),
        total_tax=_maybe_money(submitted.total_tax),
    )


def _allocations(allocations: Sequence[DiscountAllocation]) -> tuple[intake.Allocation, ...]:
    return tuple(
        intake.Allocation(
            _money(allocation.amount),
            allocation.discount_id,
            allocation.kind.value,
            allocation.title,
        )
        for allocation in allocations
    )


def _taxes(tax_lines: Sequence[TaxLine]) -> tuple[intake.Money, ...]:
    return tuple(_money(tax.amount) for tax in tax_lines)


def _money(money: Money) -> intake.Money:
    return intake.Money(money.amount_minor, money.currency)


def _maybe_money(money: Money | None) -> intake.Money | None:
    return None if money is None else _money(money)


def shipping_address_rejections(
    address: Address | None, deliverable_countries: frozenset[str]
) -> list[intake.Rejection]:
    """An order without a shipping address is collected at the warehouse: nothing to check."""
    if address is None:
        return []
    return addresses.address_rejections(
        addresses.PostalAddress(address.line1, address.city, address.postal_code, address.country),
        deliverable_countries=deliverable_countries,
        prefix="shipping_address",
    )


def _placed(order_id: str, submitted: OrderSubmitted, totals: intake.Totals) -> OrderPlaced:
    """The OrderPlaced of an accepted submission, with every derived amount filled in
    (amounts after discounts, total discounts and tax), so that a consumer never has to
    apply a formula to read what was paid."""
    currency = submitted.currency
    pricing = submitted.model_dump(include=set(OrderPricing.model_fields))
    return OrderPlaced(
        **pricing
        | {
            "shipping_lines": tuple(
                shipping.model_copy(
                    update={"discounted_price": _in(currency, _discounted_price(shipping))}
                )
                for shipping in submitted.shipping_lines
            ),
            "total_discounts": _in(currency, totals.total_discounts),
            "total_tax": _in(currency, totals.total_tax),
        },
        order_id=order_id,
        channel=submitted.channel,
        external_order_id=submitted.external_order_id,
        customer=submitted.customer,
        lines=tuple(
            line.model_copy(update={"discounted_total": _in(currency, _discounted_total(line))})
            for line in submitted.lines
        ),
        currency=currency,
        subtotal=submitted.subtotal,
        shipping_charge=submitted.shipping_charge,
        total=submitted.total,
        shipping_address=submitted.shipping_address,
        shipping_speed=submitted.shipping_speed,
        placed_at=submitted.submitted_at,
        placed_by=submitted.placed_by,
        notes=submitted.notes,
    )


def _discounted_total(line: OrderLine) -> int:
    return line.line_total.amount_minor - sum(
        allocation.amount.amount_minor for allocation in line.discount_allocations
    )


def _discounted_price(shipping: ShippingLine) -> int:
    return shipping.price.amount_minor - sum(
        allocation.amount.amount_minor for allocation in shipping.discount_allocations
    )


def _in(currency: str, amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency=currency)


def _minor(money: Money | None) -> int | None:
    return None if money is None else money.amount_minor


def _json_or_none(model: BaseModel | None) -> db.JsonValue:
    return None if model is None else model.model_dump(mode="json")


def _line_row(line: OrderLine) -> dict[str, db.JsonValue]:
    return {
        "line_id": line.line_id,
        "sku": line.sku,
        "quantity": line.quantity,
        "unit_price_minor": line.unit_price.amount_minor,
        "line_total_minor": line.line_total.amount_minor,
        "title": line.title,
        "discounted_total_minor": _minor(line.discounted_total),
        "tax_minor": sum(tax.amount.amount_minor for tax in line.tax_lines),
        "pricing": line.model_dump(mode="json", include={"discount_allocations", "tax_lines"}),
    }


# --- stock ----------------------------------------------------------------------------------


async def confirm_order(uow: UnitOfWork, event: StockReserved) -> None:
    order = await _locked_order(uow, event)
    if order is None:
        return
    decision = domain.confirmation(
        OrderStatus(order["status"]), already_confirmed=order["reservation_id"] is not None
    )
    if isinstance(decision, Refusal):
        _ignored(event, order, decision)
        return
    await db.update_order(uow.connection, event.order_id, reservation_id=event.reservation_id)
    if decision.transition is not None:
        await _apply(uow, event.order_id, decision.transition, _cause(event, "inventory"))
    await _emit(uow, OrderConfirmed(order_id=event.order_id, reservation_id=event.reservation_id))


async def cancel_for_shortage(uow: UnitOfWork, event: StockReservationFailed) -> None:
    order = await _locked_order(uow, event)
    if order is None:
        return
    decision = domain.reservation_failure(OrderStatus(order["status"]))
    if isinstance(decision, Refusal):
        _ignored(event, order, decision)
        return
    await _apply(uow, event.order_id, decision, _cause(event, "inventory"))
    short = ", ".join(
        f"{shortage.sku} ({shortage.available} of {shortage.requested})"
        for shortage in event.shortages
    )
    await _emit(
        uow,
        OrderCancelled(
            order_id=event.order_id,
            reason=CancellationReason.OUT_OF_STOCK,
            cancelled_by="system",
            note=f"Not enough stock: {short}"[:2000],
        ),
    )


# --- shipments and returns ------------------------------------------------------------------


async def record_shipment_created(uow: UnitOfWork, event: ShipmentCreated) -> None:
    await _record_fact(
        uow,
        event,
        "fulfilment",
        db.upsert_shipment,
        event.shipment_id,
        warehouse_id=event.warehouse_id,
        carrier=event.carrier,
        shipping_method=event.shipping_method,
        planned_lines=_lines_json(event.lines),
        created_at=event.occurred_at,
    )


async def record_shipment_replanned(uow: UnitOfWork, event: ShipmentReplanned) -> None:
    await _record_fact(
        uow,
        event,
        "fulfilment",
        db.upsert_shipment,
        event.shipment_id,
        warehouse_id=event.warehouse_id,
        carrier=event.carrier,
        shipping_method=event.shipping_method,
    )


async def record_shipped(uow: UnitOfWork, event: Shipped) -> None:
    await _record_fact(
        uow,
        event,
        "fulfilment",
        db.upsert_shipment,
        event.shipment_id,
        warehouse_id=event.warehouse_id,
        carrier=event.carrier,
        tracking_number=event.tracking_number,
        shipped_lines=_lines_json(event.lines),
        shipped_at=event.shipped_at,
    )


async def record_delivered(uow: UnitOfWork, event: Delivered) -> None:
    await _record_fact(
        uow,
        event,
        "fulfilment",
        db.upsert_shipment,
        event.shipment_id,
        tracking_number=event.tracking_number,
        delivered_at=event.delivered_at,
    )


async def record_shipment_cancelled(uow: UnitOfWork, event: ShipmentCancelled) -> None:
    await _record_fact(
        uow,
        event,
        "fulfilment",
        db.upsert_shipment,
        event.shipment_id,
        cancelled_at=event.occurred_at,
        cancellation_reason=event.reason.value,
    )


async def record_return_requested(uow: UnitOfWork, event: ReturnRequested) -> None:
    await _record_fact(
        uow,
        event,
        "returns",
        db.upsert_return,
        event.return_id,
        requested_lines=[line.model_dump(mode="json") for line in event.lines],
        requested_at=event.requested_at,
    )


async def record_return_rejected(uow: UnitOfWork, event: ReturnRejected) -> None:
    await _record_fact(
        uow, event, "returns", db.upsert_return, event.return_id, rejected_at=event.occurred_at
    )


async def record_returned(uow: UnitOfWork, event: Returned) -> None:
    await _record_fact(
        uow,
        event,
        "returns",
        db.upsert_return,
        event.return_id,
        returned_lines=_lines_json(event.lines),
        returned_at=event.occurred_at,
    )


async def record_refund(uow: UnitOfWork, event: RefundIssued) -> None:
    order = await _locked_order(uow, event)
    if order is None:
        return
    await db.insert_refund(
        uow.connection,
        {
            "order_id": event.order_id,
            "refund_id": event.refund_id,
            "return_id": event.return_id,
            "currency": event.amount.currency,
            "amount_minor": event.amount.amount_minor,
            "lines_amount_minor": event.lines_amount.amount_minor,
            "shipping_refunded_minor": event.shipping_refunded.amount_minor,
            "goods_amount_minor": _minor(event.goods_amount),
            "tax_amount_minor": _minor(event.tax_amount),
            "shipping_amount_minor": _minor(event.shipping_amount),
            "policy": event.policy,
            "issued_at": event.occurred_at,
        },
    )


async def record_notification(uow: UnitOfWork, event: NotificationSent) -> None:
    # Stock alerts are keyed by SKU, not by an order: only messages about our orders count.
    if await db.order(uow.connection, event.subject_key) is None:
        return
    await db.insert_notification(
        uow.connection,
        {
            "order_id": event.subject_key,
            "notification_id": event.notification_id,
            "cause_event_id": event.cause_event_id,
            "cause_event_type": event.cause_event_type,
            "channel": event.channel.value,
            "recipient": event.recipient,
            "template": event.template,
            "sent_at": event.occurred_at,
        },
    )


class FactWriter(Protocol):
    """`db.upsert_shipment` or `db.upsert_return`."""

    async def __call__(
        self, connection: AsyncConnection, order_id: str, key: str, /, **facts: db.JsonValue
    ) -> None: ...


async def _record_fact(
    uow: UnitOfWork,
    event: OrderEvent,
    actor: str,
    write: FactWriter,
    key: str,
    **facts: db.JsonValue,
) -> None:
    """Stores what a shipment or return event says, then lets every fact known so far
    decide the order's status (so the arrival order of the facts does not matter)."""
    order = await _locked_order(uow, event)
    if order is None:
        return
    await write(uow.connection, event.order_id, key, **facts)
    await _follow_facts(uow, order, event, _cause(event, actor))


async def _follow_facts(
    uow: UnitOfWork, order: RowMapping, event: OrderEvent, cause: ChangeCause
) -> None:
    connection = uow.connection
    order_id = order["order_id"]
    ordered = domain.quantities(
        (line["sku"], line["quantity"]) for line in await db.lines_of(connection, order_id)
    )
    shipments = [_shipment_facts(row) for row in await db.shipments_of(connection, order_id)]
    returns = [_return_facts(row) for row in await db.returns_of(connection, order_id)]
    delivered_at = domain.delivered_at(ordered, shipments)
    if delivered_at != order["delivered_at"]:
        await db.update_order(connection, order_id, delivered_at=delivered_at)
    current = OrderStatus(order["status"])
    change = domain.status_change(
        current,
        domain.derived_status(current, ordered, shipments, returns),
        completed=order["completed_at"] is not None,
    )
    if isinstance(change, Refusal):
        # Typically goods shipped after the order was cancelled: the facts are kept for
        # people to act on, the status stays.
        log.warning(
            "facts call for a status the order cannot take; status kept",
            order_id=order_id,
            status=current.value,
            code=change.code.value,
            reason=change.message,
            event_type=event.event_type(),
        )
    elif change is not None:
        await _apply(uow, order_id, change, cause)


def _shipment_facts(row: RowMapping) -> domain.ShipmentFacts:
    return domain.ShipmentFacts(
        shipment_id=row["shipment_id"],
        shipped_lines=_quantities(row["shipped_lines"]),
        delivered_at=row["delivered_at"],
        cancelled=row["cancelled_at"] is not None,
    )


def _return_facts(row: RowMapping) -> domain.ReturnFacts:
    return domain.ReturnFacts(
        return_id=row["return_id"],
        requested=row["requested_at"] is not None,
        rejected=row["rejected_at"] is not None,
        returned_lines=_quantities(row["returned_lines"]),
    )


def _quantities(lines: db.JsonValue) -> dict[str, int] | None:
    if lines is None:
        return None
    return domain.quantities((line["sku"], line["quantity"]) for line in lines)


def _lines_json(lines: Sequence[SkuQuantity]) -> list[db.JsonValue]:
    return [line.model_dump(mode="json") for line in lines]


# --- commands from people -------------------------------------------------------------------


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
    decision = domain.cancellation(OrderStatus(order["status"]))
    if isinstance(decision, Refusal):
        return decision
    await _apply(uow, order_id, decision, ChangeCause(actor=cancelled_by, command="cancel"))
    await _emit(
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
    refusal = domain.address_change(OrderStatus(order["status"]))
    if refusal is not None:
        return refusal
    problems = shipping_address_rejections(shipping_address, policy.deliverable_countries)
    if problems:
        return UndeliverableAddress(tuple(problems))
    new_address = shipping_address.model_dump(mode="json")
    if new_address == order["shipping_address"]:
        return Accepted(changed=False)
    await db.update_order(uow.connection, order_id, shipping_address=new_address)
    await _emit(
        uow,
        OrderShippingAddressChanged(
            order_id=order_id, shipping_address=shipping_address, changed_by=changed_by
        ),
    )
    log.info("shipping address changed", order_id=order_id, by=changed_by)
    return Accepted(changed=True)


# --- completion -----------------------------------------------------------------------------


async def complete_due_orders(
    uow: UnitOfWork, *, now: datetime, return_window: timedelta, batch_size: int
) -> int:
    """Completes the orders nothing more can happen to; returns how many."""
    candidates = await db.lock_completion_candidates(
        uow.connection, delivered_before=now - return_window, limit=batch_size
    )
    completed = 0
    for order in candidates:
        final_status = domain.completion(
            OrderStatus(order["status"]),
            delivered_at=order["delivered_at"],
            completed=order["completed_at"] is not None,
            now=now,
            return_window=return_window,
        )
        if final_status is None:
            continue
        if await db.mark_completed(uow.connection, order["order_id"], final_status.value, now):
            await _emit(
                uow,
                OrderCompleted(
                    order_id=order["order_id"],
                    final_status=order_events.FinalStatus(final_status.value),
                ),
            )
            log.info("order completed", order_id=order["order_id"], final=final_status.value)
            completed += 1
    return completed


# --- products -------------------------------------------------------------------------------


async def set_product(uow: UnitOfWork, sku: str, *, name: str, active: bool) -> ProductView:
    await db.upsert_product(uow.connection, sku, name, active)
    return ProductView(sku=sku, name=name, active=active)


async def list_products(uow: UnitOfWork) -> list[ProductView]:
    return [
        ProductView(sku=row["sku"], name=row["name"], active=row["active"])
        for row in await db.all_products(uow.connection)
    ]


# --- queries --------------------------------------------------------------------------------


async def order_view(uow: UnitOfWork, order_id: str) -> OrderView | None:
    connection = uow.connection
    order = await db.order(connection, order_id)
    if order is None:
        return None
    currency = order["currency"]
    shipment_rows = await db.shipments_of(connection, order_id)
    return_rows = await db.returns_of(connection, order_id)
    shipments = [_shipment_facts(row) for row in shipment_rows]
    return OrderView(
        order_id=order_id,
        channel=order["channel"],
        external_order_id=order["external_order_id"],
        status=order["status"],
        customer=_maybe(Customer, order["customer"]),
        lines=[_line_view(line, currency) for line in await db.lines_of(connection, order_id)],
        currency=currency,
        subtotal=_amount(order["subtotal_minor"], currency),
        shipping_charge=_amount(order["shipping_charge_minor"], currency),
        total=_amount(order["total_minor"], currency),
        total_discounts=_amount(order["total_discounts_minor"], currency),
        total_tax=_amount(order["total_tax_minor"], currency),
        **_stored_pricing(order["pricing"]),
        shipping_address=_maybe(Address, order["shipping_address"]),
        shipping_speed=order["shipping_speed"],
        placed_at=order["placed_at"],
        placed_by=order["placed_by"],
        notes=order["notes"],
        rejection_reasons=[
            RejectionReasonView.model_validate(reason)
            for reason in order["rejection_reasons"] or ()
        ],
        reservation_id=order["reservation_id"],
        shipped_quantities=domain.shipped_quantities(shipments),
        returned_quantities=domain.returned_quantities(_return_facts(row) for row in return_rows),
        shipments=[
            ShipmentView(
                shipment_id=row["shipment_id"],
                status=facts.status.value,
                warehouse_id=row["warehouse_id"],
                carrier=row["carrier"],
                tracking_number=row["tracking_number"],
                planned_lines=_sku_quantities(row["planned_lines"]),
                shipped_lines=_sku_quantities(row["shipped_lines"]),
                shipped_at=row["shipped_at"],
                delivered_at=row["delivered_at"],
                cancelled_at=row["cancelled_at"],
                cancellation_reason=row["cancellation_reason"],
            )
            for row, facts in zip(shipment_rows, shipments, strict=True)
        ],
        returns=[
            ReturnView(
                return_id=row["return_id"],
                requested_lines=(
                    None
                    if row["requested_lines"] is None
                    else [
                        RequestedReturnLineView.model_validate(line)
                        for line in row["requested_lines"]
                    ]
                ),
                requested_at=row["requested_at"],
                rejected_at=row["rejected_at"],
                returned_lines=_sku_quantities(row["returned_lines"]),
                returned_at=row["returned_at"],
            )
            for row in return_rows
        ],
        refunds=[
            RefundView(
                refund_id=row["refund_id"],
                return_id=row["return_id"],
                amount=Money(amount_minor=row["amount_minor"], currency=row["currency"]),
                lines_amount=Money(
                    amount_minor=row["lines_amount_minor"], currency=row["currency"]
                ),
                shipping_refunded=Money(
                    amount_minor=row["shipping_refunded_minor"], currency=row["currency"]
                ),
                goods_amount=_amount(row["goods_amount_minor"], row["currency"]),
                tax_amount=_amount(row["tax_amount_minor"], row["currency"]),
                shipping_amount=_amount(row["shipping_amount_minor"], row["currency"]),
                policy=row["policy"],
                issued_at=row["issued_at"],
            )
            for row in await db.refunds_of(connection, order_id)
        ],
        notifications=[
            NotificationView.model_validate(dict(row))
            for row in await db.notifications_of(connection, order_id)
        ],
        status_history=[
            StatusChangeView.model_validate(dict(row))
            for row in await db.history_of(connection, order_id)
        ],
        delivered_at=order["delivered_at"],
        completed_at=order["completed_at"],
        final_status=order["final_status"],
        created_at=order["created_at"],
        timeline=await _timeline(uow, order_id),
    )


@dataclass(frozen=True)
class OrderFilters:
    channel: str | None = None
    external_order_id: str | None = None
    status: OrderStatus | None = None
    customer_id: str | None = None
    placed_from: datetime | None = None
    """Placed at or after."""
    placed_before: datetime | None = None
    """Placed strictly before."""
    placed_until: datetime | None = None
    """Placed at or before."""


async def order_page(
    uow: UnitOfWork, filters: OrderFilters, *, limit: int, after: OrderCursor | None = None
) -> OrderPage:
    """One page of the orders that match, newest first; `next_cursor` is null on the last."""
    rows = await db.find_orders(
        uow.connection,
        channel=filters.channel,
        external_order_id=filters.external_order_id,
        status=filters.status.value if filters.status else None,
        customer_id=filters.customer_id,
        placed_from=filters.placed_from,
        placed_before=filters.placed_before,
        placed_until=filters.placed_until,
        after=(after.created_at, after.order_id) if after else None,
        # One more than asked tells whether another page exists.
        limit=limit + 1,
    )
    page = rows[:limit]
    last = page[-1] if page else None
    return OrderPage(
        items=[
            OrderSummary(
                order_id=row["order_id"],
                channel=row["channel"],
                external_order_id=row["external_order_id"],
                status=row["status"],
                customer_id=row["customer"]["customer_id"] if row["customer"] else None,
                total=_amount(row["total_minor"], row["currency"]),
                placed_at=row["placed_at"],
                created_at=row["created_at"],
            )
            for row in page
        ],
        next_cursor=(
            OrderCursor(created_at=last["created_at"], order_id=last["order_id"]).encode()
            if last is not None and len(rows) > limit
            else None
        ),
    )


async def timeline_view(uow: UnitOfWork, order_id: str) -> list[TimelineEntryView] | None:
    if await db.order(uow.connection, order_id) is None:
        return None
    return await _timeline(uow, order_id)


async def _timeline(uow: UnitOfWork, order_id: str) -> list[TimelineEntryView]:
    return [
        TimelineEntryView.model_validate(dict(row))
        for row in await db.timeline_of(uow.connection, order_id)
    ]


def _line_view(line: RowMapping, currency: str) -> LineView:
    line_total = Money(amount_minor=line["line_total_minor"], currency=currency)
    return LineView(
        line_id=line["line_id"],
        sku=line["sku"],
        title=line["title"],
        quantity=line["quantity"],
        unit_price=Money(amount_minor=line["unit_price_minor"], currency=currency),
        line_total=line_total,
        # Lines stored before the money model had no discounts and no tax.
        discounted_total=_amount(line["discounted_total_minor"], currency) or line_total,
        **_stored_line_pricing(line["pricing"]),
    )


def _stored_pricing(stored: db.JsonValue) -> dict[str, object]:
    """The order's money fields kept as JSON (none for orders placed before the money
    model), read back as the contract's models. JSON keeps enums as their values: read
    them as JSON reads them, not strictly."""
    if stored is None:
        return {}
    pricing = OrderPricing.model_validate(stored, strict=False)
    return {name: getattr(pricing, name) for name in STORED_PRICING}


def _stored_line_pricing(stored: db.JsonValue) -> dict[str, object]:
    if stored is None:
        return {}
    line = _StoredLinePricing.model_validate(stored, strict=False)
    return {"discount_allocations": line.discount_allocations, "tax_lines": line.tax_lines}


class _StoredLinePricing(BaseModel):
    discount_allocations: tuple[DiscountAllocation, ...] = ()
    tax_lines: tuple[TaxLine, ...] = ()


def _maybe(model: type[ModelT], value: db.JsonValue) -> ModelT | None:
    return None if value is None else model.model_validate(value)


def _amount(amount_minor: int | None, currency: str | None) -> Money | None:
    if amount_minor is None or currency is None:
        return None
    return Money(amount_minor=amount_minor, currency=currency)


def _sku_quantities(lines: db.JsonValue) -> list[SkuQuantity] | None:
    return None if lines is None else [SkuQuantity.model_validate(line) for line in lines]


# --- idempotency keys of the HTTP intake --------------------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    """What POST /orders answered the first time a key was used."""

    body_hash: str
    response_status: int
    order_id: str


async def stored_answer(uow: UnitOfWork, key: str) -> StoredAnswer | None:
    row = await db.idempotency_key(uow.connection, key)
    if row is None:
        return None
    return StoredAnswer(
        body_hash=row["body_hash"],
        response_status=row["response_status"],
        order_id=row["order_id"],
    )


async def store_answer(uow: UnitOfWork, key: str, answer: StoredAnswer) -> bool:
    """In the transaction of the intake it answers for; False when a concurrent request
    took the key first (the caller must then roll back its own effect)."""
    return await db.insert_idempotency_key(
        uow.connection,
        key=key,
        body_hash=answer.body_hash,
        response_status=answer.response_status,
        order_id=answer.order_id,
    )


# --- timeline -------------------------------------------------------------------------------


async def record_in_timeline(uow: UnitOfWork, event: Event) -> None:
    """A consumed event joins its order's timeline, in the consumer's transaction; events
    about an order this service does not know (or about a SKU) are left out."""
    if isinstance(event, OrderEvent):
        order_id = event.order_id
    elif isinstance(event, NotificationOutcome):
        order_id = event.subject_key
    else:
        return
    if await db.order(uow.connection, order_id) is None:
        return
    await _record_entry(uow, order_id, timeline.entry(event))


async def _emit(uow: UnitOfWork, event: OrderEvent) -> None:
    """Every event the order service emits is also an entry of the order's timeline."""
    uow.emit(event)
    await _record_entry(uow, event.order_id, timeline.entry(event))


async def _record_entry(uow: UnitOfWork, order_id: str, entry: timeline.Entry) -> None:
    await db.insert_timeline_entry(
        uow.connection,
        {
            "event_id": entry.event_id,
            "order_id": order_id,
            "event_type": entry.event_type,
            "source": entry.source,
            "occurred_at": entry.occurred_at,
            "summary": entry.summary,
            "details": entry.details,
        },
    )


# --- shared steps ---------------------------------------------------------------------------


async def _locked_order(uow: UnitOfWork, event: OrderEvent) -> RowMapping | None:
    order = await db.lock_order(uow.connection, event.order_id)
    if order is None:
        log.warning("event about an unknown order ignored", event_type=event.event_type())
    return order


def _ignored(event: OrderEvent, order: RowMapping, refusal: Refusal) -> None:
    log.info(
        "event does not apply to the order; ignored",
        event_type=event.event_type(),
        status=order["status"],
        code=refusal.code.value,
        reason=refusal.message,
    )


def _cause(event: OrderEvent, actor: str) -> ChangeCause:
    return ChangeCause(actor=actor, event_id=event.event_id)


async def _apply(uow: UnitOfWork, order_id: str, change: Transition, cause: ChangeCause) -> None:
    moved = await db.change_status(
        uow.connection,
        order_id,
        change.from_status.value,
        change.to_status.value,
        cause_event_id=cause.event_id,
        command=cause.command,
        actor=cause.actor,
    )
    if not moved:
        raise InconsistentOrderState(f"{order_id} left {change.from_status} while locked")
    log.info(
        "order status changed",
        order_id=order_id,
        from_status=change.from_status.value,
        to_status=change.to_status.value,
    )
