"""Returns: what may be sent back, by which steps, and how much money goes back.

Pure rules over plain values (stdlib only). The vocabulary mirrors the v1 contracts
(reason and rejection codes carry the same values), so the service layer converts by value.

Return request check
    Each requested line must name a SKU that was shipped in the order; its quantity must
    not exceed the units of that SKU shipped minus the units held by the order's earlier
    returns (a requested or approved return holds what it asked for, a completed one what
    actually came back, a rejected one nothing); and the request must come within the
    return window of the SKU: `window` after the delivery of the latest shipment holding it
    (counted from its shipped_at while that shipment is not delivered yet). Every problem
    is reported, not just the first.

Refund policy (`REFUND_POLICY`, named in every RefundIssued's `policy` field)
    A refund gives back what the customer paid, never list prices.
    Lines: a returned unit refunds its share of what was paid for its order line: after
    the line's discounts (its own and its share of order-level ones), with its tax, whether
    or not inspection found it restockable (inspection decides restocking, not refunds).
    Shares are cumulative, taken apart for the line's goods (net of tax) and for its tax:
    returning units k+1..k+q of a line of Q units refunds floor(X*(k+q)/Q) - floor(X*k/Q)
    of each part X. So neither part is ever negative, the refunds of a line never exceed
    what was paid for it, and once every unit has come back they add up to it exactly
    (the last unit takes the remainder of the rounding). When one SKU was ordered on
    several lines, returned units are matched to the line that paid least per unit first,
    across all of the order's returns.
    Shipping: what was paid for shipping (after its discounts, with its tax) is refunded
    at most once per order, and only when a received line of this return was sent back
    for a merchant fault (damaged, wrong_item, not_as_described), or when with this return
    every unit of the order has come back. Otherwise shipping is not refunded.
    Charges (tips, duties, fees) are not refunded by a return.
    The `policy` field reads `<REFUND_POLICY>:<branch>`, the branch being one of
    `ShippingRefundBranch`.

What was paid (`paid`)
    For a line, its amount after discounts, plus its tax when the order's prices exclude
    tax; for shipping, the same over its shipping lines (the shipping charge, with no tax
    known, when the order has none). The tax within is the sum of the tax lines, at most
    the amount paid.
All amounts are integer minor units of the order's currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction

REFUND_POLICY = (
    "paid_share_of_lines.paid_shipping_once_on_merchant_fault_or_full_return.charges_not_refunded"
)
DEFAULT_RETURN_WINDOW = timedelta(days=30)


class ReturnReason(StrEnum):
    """Why the customer sends an item back (values of the contract's ReturnReasonCode)."""

    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    NO_LONGER_NEEDED = "no_longer_needed"
    OTHER = "other"


MERCHANT_FAULT_REASONS = frozenset(
    {ReturnReason.DAMAGED, ReturnReason.WRONG_ITEM, ReturnReason.NOT_AS_DESCRIBED}
)


class RejectionCode(StrEnum):
    """Why a return request is refused (values of the contract's ReturnRejectionCode)."""

    OUTSIDE_RETURN_WINDOW = "outside_return_window"
    NOT_DELIVERED = "not_delivered"
    QUANTITY_EXCEEDS_DELIVERED = "quantity_exceeds_delivered"
    UNKNOWN_SKU = "unknown_sku"
    OTHER = "other"


class ReturnStatus(StrEnum):
    """requested → approved → completed (received, inspected and refunded in one step);
    requested → rejected. A request that fails the check is rejected at once."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    COMPLETED = "completed"


class ShippingRefundBranch(StrEnum):
    """Which branch of the shipping policy decided this refund's shipping part."""

    MERCHANT_FAULT = "merchant_fault"
    FULLY_RETURNED = "fully_returned"
    ALREADY_REFUNDED = "already_refunded"
    NOT_REFUNDED = "not_refunded"


class CommandRefusalCode(StrEnum):
    """Why a command on an existing return is refused (HTTP 409 codes)."""

    RETURN_NOT_REQUESTED = "return_not_requested"
    RETURN_NOT_APPROVED = "return_not_approved"
    SKU_NOT_IN_RETURN = "sku_not_in_return"
    QUANTITY_EXCEEDS_RETURN = "quantity_exceeds_return"
    ORDER_PRICES_UNKNOWN = "order_prices_unknown"
    RECEIVING_WAREHOUSE_UNKNOWN = "receiving_warehouse_unknown"


@dataclass(frozen=True)
class TaxedAmount:
    """An amount tax included, and the tax within it (0 <= tax_minor <= amount_minor)."""

    amount_minor: int
    tax_minor: int

    @property
    def net_minor(self) -> int:
        return self.amount_minor - self.tax_minor

    def __add__(self, other: TaxedAmount) -> TaxedAmount:
        return TaxedAmount(self.amount_minor + other.amount_minor, self.tax_minor + other.tax_minor)


NOTHING = TaxedAmount(0, 0)


def paid(after_discounts_minor: int, tax_minor: int, *, taxes_included: bool) -> TaxedAmount:
    """What the customer paid for a line or a shipping line: its amount after discounts,
    plus its tax when prices exclude tax. The tax within is capped at that amount: a
    channel may state an included tax larger than a price discounted to almost nothing,
    and a refund cannot give back more tax than was paid."""
    amount = after_discounts_minor + (0 if taxes_included else tax_minor)
    return TaxedAmount(amount, min(tax_minor, amount))


@dataclass(frozen=True)
class OrderedLine:
    """One line of the order and what the customer paid for all its units."""

    sku: str
    quantity: int
    paid: TaxedAmount

    def paid_for_units(self, first: int, last: int) -> TaxedAmount:
        """What units first+1..last of the line paid: cumulative shares of its goods and of
        its tax, so that its units add up to exactly what the line paid."""
        goods = self.paid.net_minor
        tax = self.paid.tax_minor
        goods_share = goods * last // self.quantity - goods * first // self.quantity
        tax_share = tax * last // self.quantity - tax * first // self.quantity
        return TaxedAmount(goods_share + tax_share, tax_share)


@dataclass(frozen=True)
class Placement:
    """What the order said when it was placed: currency, what was paid for each line and
    for shipping. (Charges such as tips and duties are not kept: returns never refund
    them.)"""

    currency: str
    shipping_paid: TaxedAmount
    customer_id: str | None
    lines: tuple[OrderedLine, ...]

    def ordered_quantities(self) -> dict[str, int]:
        return _sum_by_sku((line.sku, line.quantity) for line in self.lines)


@dataclass(frozen=True)
class Shipment:
    shipment_id: str
    warehouse_id: str
    shipped_at: datetime
    quantities: Mapping[str, int]
    delivered_at: datetime | None = None

    @property
    def window_opened_at(self) -> datetime:
        return self.delivered_at or self.shipped_at


@dataclass(frozen=True)
class OrderFacts:
    """What the returns service knows of one order. `placement` is None until OrderPlaced
    arrives (Shipped, on another topic, may come first)."""

    order_id: str
    placement: Placement | None
    shipments: tuple[Shipment, ...]

    def shipped_quantity(self, sku: str) -> int:
        return sum(shipment.quantities.get(sku, 0) for shipment in self.shipments)

    def shipments_holding(self, sku: str) -> list[Shipment]:
        return [shipment for shipment in self.shipments if shipment.quantities.get(sku, 0) > 0]

    def ordered_skus(self) -> set[str]:
        return {line.sku for line in self.placement.lines} if self.placement else set()


@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int
    reason: ReturnReason


@dataclass(frozen=True)
class ReceivedLine:
    sku: str
    quantity: int
    restockable_quantity: int
    note: str | None = None


@dataclass(frozen=True)
class Refusal:
    """One reason a return request is refused; `field` points into the request."""

    code: RejectionCode
    message: str
    field: str | None = None


@dataclass(frozen=True)
class CommandRefusal:
    code: CommandRefusalCode
    message: str


@dataclass(frozen=True)
class RefundedLine:
    """What the returned units of one SKU gave back."""

    sku: str
    quantity: int
    refunded: TaxedAmount


@dataclass(frozen=True)
class Refund:
    """One refund: for the returned units (`lines_total`, per SKU in `lines`) and for
    shipping, each tax included with the tax within. Refunds issued before the per-SKU
    breakdown was kept have no `lines`, and no tax."""

    refund_id: str
    currency: str
    lines_total: TaxedAmount
    shipping: TaxedAmount
    policy: str
    lines: tuple[RefundedLine, ...]

    @property
    def lines_amount_minor(self) -> int:
        return self.lines_total.amount_minor

    @property
    def shipping_refunded_minor(self) -> int:
        return self.shipping.amount_minor

    @property
    def amount_minor(self) -> int:
        return self.lines_amount_minor + self.shipping_refunded_minor

    @property
    def goods_amount_minor(self) -> int:
        return self.lines_total.net_minor

    @property
    def tax_amount_minor(self) -> int:
        return self.lines_total.tax_minor + self.shipping.tax_minor

    @property
    def shipping_amount_minor(self) -> int:
        return self.shipping.net_minor


@dataclass(frozen=True)
class Return:
    """One RMA as it stands."""

    return_id: str
    order_id: str
    status: ReturnStatus
    lines: tuple[RequestedLine, ...]
    requested_at: datetime
    label_reference: str | None = None
    rejection_reasons: tuple[Refusal, ...] = ()
    receiving_warehouse_id: str | None = None
    received: tuple[ReceivedLine, ...] = ()
    refund: Refund | None = None

    def units_held(self) -> dict[str, int]:
        """Units of each SKU this return counts against what may still be returned."""
        if self.status in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
            return _sum_by_sku((line.sku, line.quantity) for line in self.lines)
        if self.status is ReturnStatus.COMPLETED:
            return self.received_quantities()
        return {}

    def received_quantities(self) -> dict[str, int]:
        return _sum_by_sku((line.sku, line.quantity) for line in self.received)


def check_return_request(
    order: OrderFacts,
    lines: Sequence[RequestedLine],
    earlier_returns: Iterable[Return],
    *,
    now: datetime,
    window: timedelta = DEFAULT_RETURN_WINDOW,
) -> tuple[Refusal, ...]:
    """Everything that stops this request; empty when it may be accepted. The request has
    one line per SKU (the API refuses duplicates)."""
    held: dict[str, int] = {}
    for earlier in earlier_returns:
        for sku, quantity in earlier.units_held().items():
            held[sku] = held.get(sku, 0) + quantity
    refusals: list[Refusal] = []
    if not order.shipments:
        refusals.append(
            Refusal(RejectionCode.NOT_DELIVERED, "Nothing of this order has shipped yet.")
        )
    ordered = order.ordered_skus()
    for index, line in enumerate(lines):
        shipped = order.shipped_quantity(line.sku)
        if shipped == 0:
            if line.sku not in ordered:
                refusals.append(
                    Refusal(
                        RejectionCode.UNKNOWN_SKU,
                        f"SKU {line.sku} is not part of this order.",
                        f"lines.{index}.sku",
                    )
                )
            elif order.shipments:
                refusals.append(
                    Refusal(
                        RejectionCode.QUANTITY_EXCEEDS_DELIVERED,
                        f"No unit of SKU {line.sku} has shipped yet.",
                        f"lines.{index}.quantity",
                    )
                )
            continue
        returnable = shipped - held.get(line.sku, 0)
        if line.quantity > returnable:
            refusals.append(
                Refusal(
                    RejectionCode.QUANTITY_EXCEEDS_DELIVERED,
                    f"Asked to return {line.quantity} of SKU {line.sku}; {shipped} shipped, "
                    f"{max(returnable, 0)} still returnable.",
                    f"lines.{index}.quantity",
                )
            )
        closes_at = return_window_closes_at(order, line.sku, window)
        if now > closes_at:
            refusals.append(
                Refusal(
                    RejectionCode.OUTSIDE_RETURN_WINDOW,
                    f"The return window of SKU {line.sku} closed at {closes_at.isoformat()}.",
                    f"lines.{index}.sku",
                )
            )
    return tuple(refusals)


def return_window_closes_at(order: OrderFacts, sku: str, window: timedelta) -> datetime:
    """`window` after the latest delivery (or shipment, while undelivered) holding the SKU.
    The SKU must have shipped."""
    return max(shipment.window_opened_at for shipment in order.shipments_holding(sku)) + window


def approval_refusal(rma: Return) -> CommandRefusal | None:
    if rma.status is ReturnStatus.REQUESTED:
        return None
    return CommandRefusal(
        CommandRefusalCode.RETURN_NOT_REQUESTED,
        f"Only a requested return can be approved or rejected; this one is {rma.status}.",
    )


def receipt_refusal(
    rma: Return, order: OrderFacts, received: Sequence[ReceivedLine]
) -> CommandRefusal | None:
    """Why this receipt cannot be recorded, or None. One line per SKU (the API refuses
    duplicates)."""
    if rma.status is not ReturnStatus.APPROVED:
        return CommandRefusal(
            CommandRefusalCode.RETURN_NOT_APPROVED,
            f"Only an approved return can be received; this one is {rma.status}.",
        )
    expected = {line.sku: line.quantity for line in rma.lines}
    for line in received:
        if line.sku not in expected:
            return CommandRefusal(
                CommandRefusalCode.SKU_NOT_IN_RETURN, f"SKU {line.sku} is not in this return."
            )
        if line.quantity > expected[line.sku]:
            return CommandRefusal(
                CommandRefusalCode.QUANTITY_EXCEEDS_RETURN,
                f"Received {line.quantity} of SKU {line.sku}; the return allows "
                f"{expected[line.sku]}.",
            )
    if order.placement is None:
        return CommandRefusal(
            CommandRefusalCode.ORDER_PRICES_UNKNOWN,
            "The order's prices are not known here yet (OrderPlaced not received); "
            "try again shortly.",
        )
    return None


def default_receiving_warehouse(order: OrderFacts, skus: Iterable[str]) -> str | None:
    """The one warehouse the received SKUs shipped from; None when there are several (the
    receiver must say which) or none."""
    warehouses = {
        shipment.warehouse_id for sku in skus for shipment in order.shipments_holding(sku)
    }
    return warehouses.pop() if len(warehouses) == 1 else None


@dataclass(frozen=True)
class RefundComputation:
    lines: tuple[RefundedLine, ...]
    shipping: TaxedAmount
    branch: ShippingRefundBranch

    @property
    def lines_total(self) -> TaxedAmount:
        return sum((line.refunded for line in self.lines), NOTHING)

    @property
    def policy(self) -> str:
        return f"{REFUND_POLICY}:{self.branch}"


def compute_refund(
    placement: Placement,
    rma: Return,
    received: Sequence[ReceivedLine],
    other_returns: Iterable[Return],
) -> RefundComputation:
    """The refund for receiving `received` on `rma`, given the order's other returns
    (only completed ones count: they are what came back and what was refunded)."""
    completed = [
        other
        for other in other_returns
        if other.status is ReturnStatus.COMPLETED and other.return_id != rma.return_id
    ]
    earlier_received: dict[str, int] = {}
    for other in completed:
        for sku, quantity in other.received_quantities().items():
            earlier_received[sku] = earlier_received.get(sku, 0) + quantity
    refunded_lines = tuple(
        RefundedLine(
            line.sku,
            line.quantity,
            _paid_for_units(placement, line.sku, earlier_received.get(line.sku, 0), line.quantity),
        )
        for line in received
    )
    reasons = {line.sku: line.reason for line in rma.lines}
    now_received = {
        sku: earlier_received.get(sku, 0) + quantity
        for sku, quantity in _sum_by_sku((line.sku, line.quantity) for line in received).items()
    }
    fully_returned = all(
        {**earlier_received, **now_received}.get(sku, 0) >= ordered
        for sku, ordered in placement.ordered_quantities().items()
    )
    if any(
        other.refund is not None and other.refund.shipping_refunded_minor > 0 for other in completed
    ):
        branch = ShippingRefundBranch.ALREADY_REFUNDED
    elif any(reasons.get(line.sku) in MERCHANT_FAULT_REASONS for line in received):
        branch = ShippingRefundBranch.MERCHANT_FAULT
    elif fully_returned:
        branch = ShippingRefundBranch.FULLY_RETURNED
    else:
        branch = ShippingRefundBranch.NOT_REFUNDED
    refunds_shipping = branch in (
        ShippingRefundBranch.MERCHANT_FAULT,
        ShippingRefundBranch.FULLY_RETURNED,
    )
    return RefundComputation(
        lines=refunded_lines,
        shipping=placement.shipping_paid if refunds_shipping else NOTHING,
        branch=branch,
    )


def _paid_for_units(
    placement: Placement, sku: str, already_returned: int, count: int
) -> TaxedAmount:
    """What `count` units of the SKU after the first `already_returned` paid, the order's
    units of that SKU taken from the line that paid least per unit first (ties in line
    order, so every return of the order sees the same sequence)."""
    lines = sorted(
        (line for line in placement.lines if line.sku == sku),
        key=lambda line: Fraction(line.paid.amount_minor, line.quantity),
    )
    ordered = sum(line.quantity for line in lines)
    if already_returned + count > ordered:
        # The request check caps returns at shipped units; more than ordered means the
        # order's facts contradict each other, which is a bug, not a business case.
        raise ValueError(f"{already_returned + count} units of {sku} returned, {ordered} ordered")
    refunded = NOTHING
    start = 0  # units of the SKU on the lines before this one
    for line in lines:
        first = min(max(already_returned - start, 0), line.quantity)
        last = min(max(already_returned + count - start, 0), line.quantity)
        refunded += line.paid_for_units(first, last)
        start += line.quantity
    return refunded


def _sum_by_sku(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for sku, quantity in pairs:
        totals[sku] = totals.get(sku, 0) + quantity
    return totals
