"""Intake: a channel's order becomes an order of ours, placed or rejected, once per
(channel, external_order_id), whichever way it comes in.

Both ways in give the same result: an OrderSubmitted consumed from the channel topic
(`take_order`, in a batch) and an order posted to POST /orders (`submit_order`, in a unit
of work) are judged by the same rules (`take`: the contract's stored-text check, then the
intake rules of `services.order.intake` with the sellable SKUs and the address rules) and
make the same rows and events. A submission of a channel order already taken is its
duplicate: nothing happens but its timeline entry on that order. A channel record that
breaks the contract but names its channel order is rejected too
(`reject_contract_violation`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from pydantic import ValidationError

from contracts.base import Money, new_event_id
from contracts.events.channel import OrderSubmitted
from contracts.events.common import Address, OrderLine, OrderPricing
from contracts.events.order import (
    OrderPlaced,
    OrderRejected,
    OrderRejectionCode,
    OrderRejectionReason,
)
from contracts.events.pricing import DiscountAllocation, ShippingLine, TaxLine
from contracts.wire import MAX_EVENT_BYTES
from services.kit.batch import Context
from services.kit.logs import get_logger
from services.kit.unit_of_work import UnitOfWork
from services.order import addresses, changes, db, domain, intake, timeline
from services.order.batch_state import OrderBatch, announce
from services.order.domain import OrderStatus
from services.order.rows import ChangeCause, LineRow, NewOrder, StatusChange

log = get_logger(__name__)

CHANNEL_ACTOR = "channel"
"""Who changed an order's status when a channel's record did."""

MAX_REJECTION_REASONS = 100
"""OrderRejected carries at most this many reasons; the first ones found are kept."""

STORED_PRICING = set(OrderPricing.model_fields) - {"total_discounts", "total_tax"}
"""The money fields kept as one JSON document; the two totals have columns of their own."""


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


@dataclass(frozen=True, slots=True)
class NewChannelOrder:
    """What a submission of a channel order not yet taken becomes: its row, its lines and
    the event announcing it (OrderPlaced or OrderRejected)."""

    order: NewOrder
    lines: tuple[LineRow, ...]
    announcement: OrderPlaced | OrderRejected

    @property
    def result(self) -> IntakeResult:
        if isinstance(self.announcement, OrderRejected):
            return IntakeResult(
                IntakeOutcome.REJECTED, self.order.order_id, self.announcement.reasons
            )
        return IntakeResult(IntakeOutcome.PLACED, self.order.order_id)


# --- the consumed submission --------------------------------------------------------------


def take_order(
    batch: OrderBatch, submitted: OrderSubmitted, context: Context, policy: IntakePolicy
) -> None:
    """An OrderSubmitted from the channel topic. The batch knows the channel orders already
    taken, those taken earlier in the batch included, and the sellable SKUs."""
    order_id = batch.order_id_of(submitted.channel, submitted.external_order_id)
    if order_id is not None:
        result = _duplicate(order_id, submitted)
    else:
        new = take(submitted, sellable_skus=batch.sellable_skus, policy=policy)
        batch.add_order(
            new.order, new.lines, ChangeCause(actor=CHANNEL_ACTOR, event_id=submitted.event_id)
        )
        announce(batch, context, new.announcement)
        result = new.result
        _log_taken(result)
    # Only the intake knows the order id the submission became.
    batch.record(result.order_id, submission_entry(submitted, result, via="kafka"))


# --- orders posted over HTTP, and records that break the contract --------------------------


async def submit_order(
    uow: UnitOfWork, submitted: OrderSubmitted, policy: IntakePolicy, cause: ChangeCause
) -> IntakeResult:
    """Places or rejects an order posted to POST /orders, once per (channel,
    external_order_id)."""
    connection = uow.connection
    order_id = await db.order_id_by_channel_id(
        connection, submitted.channel, submitted.external_order_id
    )
    if order_id is not None:
        result = _duplicate(order_id, submitted)
    else:
        sellable = await db.sellable_skus(connection, {line.sku for line in submitted.lines})
        result = await _store(uow, take(submitted, sellable_skus=sellable, policy=policy), cause)
    await changes.record_entry(
        uow, result.order_id, submission_entry(submitted, result, via="http")
    )
    return result


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
                "order_id": _new_order_id(),
                "channel": payload.get("channel"),
                "external_order_id": payload.get("external_order_id"),
                "reasons": _contract_violations(raw, error),
            }
        )
    except ValidationError:
        return False
    if (
        await db.order_id_by_channel_id(
            uow.connection, rejected.channel, rejected.external_order_id
        )
        is None
    ):
        await _store(uow, contract_rejection(rejected), cause)
    return True


async def _store(uow: UnitOfWork, new: NewChannelOrder, cause: ChangeCause) -> IntakeResult:
    """Inserts the new order and announces it; a concurrent submission of the same channel
    order that committed first makes this one its duplicate."""
    connection = uow.connection
    order = new.order
    if not await db.insert_order(connection, order):
        order_id = await db.order_id_by_channel_id(
            connection, order.channel, order.external_order_id
        )
        if order_id is None:
            raise changes.InconsistentOrderState(
                f"{order.channel}:{order.external_order_id} conflicted but is not there"
            )
        return IntakeResult(IntakeOutcome.DUPLICATE, order_id)
    await db.record_status(connection, StatusChange(order.order_id, None, order.status, cause))
    await db.insert_lines(connection, new.lines)
    await changes.emit(uow, new.announcement)
    _log_taken(new.result)
    return new.result


def _duplicate(order_id: str, submitted: OrderSubmitted) -> IntakeResult:
    # A retry or replay of a channel order is a duplicate of effect: nothing new happens.
    log.debug(
        "duplicate submission ignored",
        order_id=order_id,
        channel=submitted.channel,
        external_order_id=submitted.external_order_id,
    )
    return IntakeResult(IntakeOutcome.DUPLICATE, order_id)


def _log_taken(result: IntakeResult) -> None:
    log.debug(
        f"order {result.outcome.value}",
        order_id=result.order_id,
        codes=sorted({reason.code.value for reason in result.reasons}),
    )


def submission_entry(
    submitted: OrderSubmitted, result: IntakeResult, *, via: str
) -> timeline.Entry:
    """The submission's own timeline entry, on the order it became (or duplicates)."""
    return timeline.entry(submitted, extra={"via": via, "outcome": result.outcome.value})


# --- what a submission becomes --------------------------------------------------------------


def take(
    submitted: OrderSubmitted, *, sellable_skus: frozenset[str], policy: IntakePolicy
) -> NewChannelOrder:
    """The order a submission of a channel order not yet taken becomes: rejected as a
    contract violation when its text cannot be stored, rejected with every reason the
    intake rules find, or placed."""
    unstorable = _unstorable_text(submitted)
    if unstorable:
        return contract_rejection(
            OrderRejected(
                order_id=_new_order_id(),
                channel=submitted.channel,
                external_order_id=submitted.external_order_id,
                reasons=unstorable,
            )
        )
    submission = intake_submission(submitted)
    rejections = intake.rejections(
        submission,
        sellable_skus=sellable_skus,
        address_rejections=shipping_address_rejections(
            submitted.shipping_address, policy.deliverable_countries
        ),
    )
    order_id = _new_order_id()
    order = NewOrder(
        order_id=order_id,
        channel=submitted.channel,
        external_order_id=submitted.external_order_id,
        status=OrderStatus.PLACED.value,
        customer=submitted.customer.model_dump(mode="json"),
        shipping_address=(
            None
            if submitted.shipping_address is None
            else submitted.shipping_address.model_dump(mode="json")
        ),
        shipping_speed=submitted.shipping_speed.value,
        placed_at=submitted.submitted_at,
        placed_by=submitted.placed_by,
        notes=submitted.notes,
    )
    if rejections:
        reasons = tuple(
            OrderRejectionReason(
                code=OrderRejectionCode(rejection.code.value),
                field=rejection.field,
                message=rejection.message,
            )
            for rejection in rejections[:MAX_REJECTION_REASONS]
        )
        return NewChannelOrder(
            replace(
                order,
                status=OrderStatus.REJECTED.value,
                rejection_reasons=_reasons_json(reasons),
            ),
            (),
            OrderRejected(
                order_id=order_id,
                channel=submitted.channel,
                external_order_id=submitted.external_order_id,
                reasons=reasons,
            ),
        )
    placed = _placed(order_id, submitted, intake.totals(submission))
    return NewChannelOrder(
        replace(
            order,
            currency=placed.currency,
            subtotal_minor=placed.subtotal.amount_minor,
            shipping_charge_minor=placed.shipping_charge.amount_minor,
            total_minor=placed.total.amount_minor,
            total_discounts_minor=_minor(placed.total_discounts),
            total_tax_minor=_minor(placed.total_tax),
            pricing=placed.model_dump(mode="json", include=STORED_PRICING),
        ),
        tuple(_line_row(order_id, position, line) for position, line in enumerate(placed.lines)),
        placed,
    )


def contract_rejection(rejected: OrderRejected) -> NewChannelOrder:
    """Keeps nothing of a submission that broke the contract but its identity and the
    reasons (the rest may not even be storable)."""
    return NewChannelOrder(
        NewOrder(
            order_id=rejected.order_id,
            channel=rejected.channel,
            external_order_id=rejected.external_order_id,
            status=OrderStatus.REJECTED.value,
            rejection_reasons=_reasons_json(rejected.reasons),
        ),
        (),
        rejected,
    )


def _new_order_id() -> str:
    return domain.order_id_from(new_event_id())


def _unstorable_text(submitted: OrderSubmitted) -> tuple[OrderRejectionReason, ...]:
    """Text with NUL characters passes the contract but PostgreSQL cannot store it:
    a contract violation of its own, one reason per field."""
    # JSON writes a NUL character as \u0000: one quick look before searching every field.
    if "\\u0000" not in submitted.model_dump_json():
        return ()
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


def _reasons_json(reasons: Sequence[OrderRejectionReason]) -> list[dict[str, object]]:
    return [reason.model_dump(mode="json") for reason in reasons]


def _line_row(order_id: str, position: int, line: OrderLine) -> LineRow:
    return LineRow(
        order_id=order_id,
        position=position,
        line_id=line.line_id,
        sku=line.sku,
        quantity=line.quantity,
        unit_price_minor=line.unit_price.amount_minor,
        line_total_minor=line.line_total.amount_minor,
        title=line.title,
        discounted_total_minor=_minor(line.discounted_total),
        tax_minor=sum(tax.amount.amount_minor for tax in line.tax_lines),
        pricing=line.model_dump(mode="json", include={"discount_allocations", "tax_lines"}),
    )


# --- idempotency keys of POST /orders ------------------------------------------------------


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
        body_hash=row.body_hash, response_status=row.response_status, order_id=row.order_id
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
