"""Intake: is a submitted order one we can place? Pure rules, no I/O.

A submission is checked the way channels compute their orders (Shopify, marketplaces,
our own POST /orders), amount by amount, each against the formula the contract states:

    line.line_total        = unit_price * quantity
    line.discounted_total  = line_total - Σ line allocations         (≥ 0)
    shipping.discounted    = price - Σ shipping allocations          (≥ 0)
    subtotal               = Σ line_total
    shipping_charge        = Σ shipping_lines.price                  (when there are any)
    total_discounts        = Σ every allocation
    total_tax              = Σ every tax line
    total                  = subtotal - total_discounts + shipping_charge + Σ charges
                             + (0 when taxes_included, else total_tax)

Every rejection names the field and, for an amount, both numbers: what was sent and what
the formula gives. Sums across currencies mean nothing, so with any amount in another
currency (reported on its own) the arithmetic is not judged.

Address rules live in `services.order.addresses`; the caller passes its findings in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class RejectionCode(StrEnum):
    """Why a submission is refused; the values are the contract's OrderRejectionCode."""

    CONTRACT_VIOLATION = "contract_violation"
    LINE_TOTAL_MISMATCH = "line_total_mismatch"
    TOTAL_MISMATCH = "total_mismatch"
    TAX_MISMATCH = "tax_mismatch"
    INVALID_DISCOUNT = "invalid_discount"
    CURRENCY_MISMATCH = "currency_mismatch"
    INVALID_ADDRESS = "invalid_address"
    DUPLICATE_LINE = "duplicate_line"
    UNKNOWN_SKU = "unknown_sku"


@dataclass(frozen=True)
class Rejection:
    code: RejectionCode
    field: str | None
    message: str


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class Allocation:
    """What one discount took off one line or shipping line."""

    amount: Money
    discount_id: str | None
    kind: str
    title: str


@dataclass(frozen=True)
class Discount:
    discount_id: str
    kind: str
    title: str


@dataclass(frozen=True)
class Line:
    line_id: str
    sku: str
    quantity: int
    unit_price: Money
    line_total: Money
    allocations: tuple[Allocation, ...] = ()
    discounted_total: Money | None = None
    taxes: tuple[Money, ...] = ()


@dataclass(frozen=True)
class ShippingLine:
    price: Money
    allocations: tuple[Allocation, ...] = ()
    discounted_price: Money | None = None
    taxes: tuple[Money, ...] = ()


@dataclass(frozen=True)
class Charge:
    amount: Money
    taxes: tuple[Money, ...] = ()


@dataclass(frozen=True)
class Submission:
    currency: str
    lines: tuple[Line, ...]
    subtotal: Money
    shipping_charge: Money
    total: Money
    shipping_lines: tuple[ShippingLine, ...] = ()
    charges: tuple[Charge, ...] = ()
    discounts: tuple[Discount, ...] = ()
    taxes_included: bool = False
    total_discounts: Money | None = None
    total_tax: Money | None = None


@dataclass(frozen=True)
class Totals:
    """The order's amounts as the formulas give them from its parts."""

    subtotal: int
    total_discounts: int
    shipping_charge: int
    charges: int
    total_tax: int
    total: int


def rejections(
    submission: Submission,
    *,
    sellable_skus: frozenset[str],
    address_rejections: Iterable[Rejection] = (),
) -> tuple[Rejection, ...]:
    """Everything wrong with a submission that passed the contract; empty when it may be
    placed."""
    return (
        *_duplicate_lines(submission),
        *_unknown_skus(submission, sellable_skus),
        *_invalid_discounts(submission),
        *_currency_mismatches(submission),
        *_amount_mismatches(submission),
        *address_rejections,
    )


def totals(submission: Submission) -> Totals:
    """The amounts the formulas give, from the lines, shipping lines and charges."""
    subtotal = sum(line.line_total.amount_minor for line in submission.lines)
    discounts = _sum(allocation.amount for _path, allocation in _allocations(submission))
    shipping = (
        _sum(shipping.price for shipping in submission.shipping_lines)
        if submission.shipping_lines
        else submission.shipping_charge.amount_minor
    )
    charges = _sum(charge.amount for charge in submission.charges)
    taxed: tuple[Line | ShippingLine | Charge, ...] = (
        *submission.lines,
        *submission.shipping_lines,
        *submission.charges,
    )
    tax = _sum(tax for part in taxed for tax in part.taxes)
    added_tax = 0 if submission.taxes_included else tax
    return Totals(
        subtotal=subtotal,
        total_discounts=discounts,
        shipping_charge=shipping,
        charges=charges,
        total_tax=tax,
        total=subtotal - discounts + shipping + charges + added_tax,
    )


def discounted_total(line: Line) -> int:
    """The line's amount after its discounts."""
    return line.line_total.amount_minor - _sum(allocation.amount for allocation in line.allocations)


def discounted_price(shipping: ShippingLine) -> int:
    return shipping.price.amount_minor - _sum(
        allocation.amount for allocation in shipping.allocations
    )


def _sum(amounts: Iterable[Money]) -> int:
    return sum(money.amount_minor for money in amounts)


def _duplicate_lines(submission: Submission) -> Iterator[Rejection]:
    seen: set[str] = set()
    for index, line in enumerate(submission.lines):
        if line.line_id in seen:
            yield Rejection(
                RejectionCode.DUPLICATE_LINE,
                f"lines.{index}.line_id",
                f"line_id {line.line_id!r} appears more than once",
            )
        seen.add(line.line_id)


def _unknown_skus(submission: Submission, sellable_skus: frozenset[str]) -> Iterator[Rejection]:
    for index, line in enumerate(submission.lines):
        if line.sku not in sellable_skus:
            yield Rejection(
                RejectionCode.UNKNOWN_SKU,
                f"lines.{index}.sku",
                f"SKU {line.sku!r} is not a sellable product",
            )


def _allocations(submission: Submission) -> Iterator[tuple[str, Allocation]]:
    for index, line in enumerate(submission.lines):
        for position, allocation in enumerate(line.allocations):
            yield f"lines.{index}.discount_allocations.{position}", allocation
    for index, shipping in enumerate(submission.shipping_lines):
        for position, allocation in enumerate(shipping.allocations):
            yield f"shipping_lines.{index}.discount_allocations.{position}", allocation


def _invalid_discounts(submission: Submission) -> Iterator[Rejection]:
    listed: dict[str, Discount] = {}
    for index, discount in enumerate(submission.discounts):
        if discount.discount_id in listed:
            yield Rejection(
                RejectionCode.INVALID_DISCOUNT,
                f"discounts.{index}.discount_id",
                f"discount_id {discount.discount_id!r} appears more than once",
            )
        listed.setdefault(discount.discount_id, discount)
    for path, allocation in _allocations(submission):
        if allocation.discount_id is None:
            continue
        named = listed.get(allocation.discount_id)
        if named is None:
            yield Rejection(
                RejectionCode.INVALID_DISCOUNT,
                f"{path}.discount_id",
                f"discount_id {allocation.discount_id!r} is not one of the order's discounts",
            )
        elif (allocation.kind, allocation.title) != (named.kind, named.title):
            yield Rejection(
                RejectionCode.INVALID_DISCOUNT,
                path,
                f"{allocation.kind} {allocation.title!r} differs from discount "
                f"{named.discount_id!r}: {named.kind} {named.title!r}",
            )


def _amounts(submission: Submission) -> Iterator[tuple[str, Money]]:
    """Every amount of the submission, with its path."""
    for index, line in enumerate(submission.lines):
        path = f"lines.{index}"
        yield f"{path}.unit_price", line.unit_price
        yield f"{path}.line_total", line.line_total
        if line.discounted_total is not None:
            yield f"{path}.discounted_total", line.discounted_total
        yield from _tax_amounts(path, line.taxes)
    for index, shipping in enumerate(submission.shipping_lines):
        path = f"shipping_lines.{index}"
        yield f"{path}.price", shipping.price
        if shipping.discounted_price is not None:
            yield f"{path}.discounted_price", shipping.discounted_price
        yield from _tax_amounts(path, shipping.taxes)
    for index, charge in enumerate(submission.charges):
        yield f"charges.{index}.amount", charge.amount
        yield from _tax_amounts(f"charges.{index}", charge.taxes)
    for path, allocation in _allocations(submission):
        yield f"{path}.amount", allocation.amount
    yield "subtotal", submission.subtotal
    yield "shipping_charge", submission.shipping_charge
    if submission.total_discounts is not None:
        yield "total_discounts", submission.total_discounts
    if submission.total_tax is not None:
        yield "total_tax", submission.total_tax
    yield "total", submission.total


def _tax_amounts(path: str, taxes: tuple[Money, ...]) -> Iterator[tuple[str, Money]]:
    for position, tax in enumerate(taxes):
        yield f"{path}.tax_lines.{position}.amount", tax


def _currency_mismatches(submission: Submission) -> Iterator[Rejection]:
    for path, money in _amounts(submission):
        if money.currency != submission.currency:
            yield Rejection(
                RejectionCode.CURRENCY_MISMATCH,
                f"{path}.currency",
                f"{money.currency} differs from the order currency {submission.currency}",
            )


def _amount_mismatches(submission: Submission) -> list[Rejection]:
    if any(money.currency != submission.currency for _path, money in _amounts(submission)):
        return []
    return [
        *_line_mismatches(submission),
        *_shipping_line_mismatches(submission),
        *_order_mismatches(submission),
    ]


def _mismatch(code: RejectionCode, field: str, sent: int, expected: int, formula: str) -> Rejection:
    return Rejection(code, field, f"{field} is {sent}, but {formula} is {expected}")


def _line_mismatches(submission: Submission) -> Iterator[Rejection]:
    for index, line in enumerate(submission.lines):
        path = f"lines.{index}"
        expected_total = line.unit_price.amount_minor * line.quantity
        if line.line_total.amount_minor != expected_total:
            yield _mismatch(
                RejectionCode.LINE_TOTAL_MISMATCH,
                f"{path}.line_total",
                line.line_total.amount_minor,
                expected_total,
                f"unit_price {line.unit_price.amount_minor} * quantity {line.quantity}",
            )
        after_discounts = discounted_total(line)
        if after_discounts < 0:
            yield Rejection(
                RejectionCode.LINE_TOTAL_MISMATCH,
                f"{path}.discount_allocations",
                f"the line's discounts ({line.line_total.amount_minor - after_discounts}) exceed "
                f"its line_total {line.line_total.amount_minor}",
            )
        elif line.discounted_total is not None and line.discounted_total.amount_minor != (
            after_discounts
        ):
            yield _mismatch(
                RejectionCode.LINE_TOTAL_MISMATCH,
                f"{path}.discounted_total",
                line.discounted_total.amount_minor,
                after_discounts,
                "line_total - Σ discount_allocations",
            )


def _shipping_line_mismatches(submission: Submission) -> Iterator[Rejection]:
    for index, shipping in enumerate(submission.shipping_lines):
        path = f"shipping_lines.{index}"
        after_discounts = discounted_price(shipping)
        if after_discounts < 0:
            yield Rejection(
                RejectionCode.TOTAL_MISMATCH,
                f"{path}.discount_allocations",
                f"the shipping discounts ({shipping.price.amount_minor - after_discounts}) exceed "
                f"its price {shipping.price.amount_minor}",
            )
        elif shipping.discounted_price is not None and shipping.discounted_price.amount_minor != (
            after_discounts
        ):
            yield _mismatch(
                RejectionCode.TOTAL_MISMATCH,
                f"{path}.discounted_price",
                shipping.discounted_price.amount_minor,
                after_discounts,
                "price - Σ discount_allocations",
            )


def _order_mismatches(submission: Submission) -> Iterator[Rejection]:
    expected = totals(submission)
    if submission.subtotal.amount_minor != expected.subtotal:
        yield _mismatch(
            RejectionCode.TOTAL_MISMATCH,
            "subtotal",
            submission.subtotal.amount_minor,
            expected.subtotal,
            "Σ lines.line_total",
        )
    if submission.shipping_lines and submission.shipping_charge.amount_minor != (
        expected.shipping_charge
    ):
        yield _mismatch(
            RejectionCode.TOTAL_MISMATCH,
            "shipping_charge",
            submission.shipping_charge.amount_minor,
            expected.shipping_charge,
            "Σ shipping_lines.price",
        )
    if submission.total_discounts is not None and submission.total_discounts.amount_minor != (
        expected.total_discounts
    ):
        yield _mismatch(
            RejectionCode.TOTAL_MISMATCH,
            "total_discounts",
            submission.total_discounts.amount_minor,
            expected.total_discounts,
            "Σ discount_allocations of lines and shipping lines",
        )
    if submission.total_tax is not None and submission.total_tax.amount_minor != (
        expected.total_tax
    ):
        yield _mismatch(
            RejectionCode.TAX_MISMATCH,
            "total_tax",
            submission.total_tax.amount_minor,
            expected.total_tax,
            "Σ tax_lines of lines, shipping lines and charges",
        )
    if submission.total.amount_minor != expected.total:
        tax = "" if submission.taxes_included else f" + total_tax {expected.total_tax}"
        yield _mismatch(
            RejectionCode.TOTAL_MISMATCH,
            "total",
            submission.total.amount_minor,
            expected.total,
            f"subtotal {expected.subtotal} - total_discounts {expected.total_discounts} + "
            f"shipping_charge {expected.shipping_charge} + charges {expected.charges}{tax}",
        )
