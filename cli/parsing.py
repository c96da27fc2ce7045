"""Parsing of the compact arguments operators type: `SKU:QTY:REASON` return lines,
`SKU:QTY:RESTOCKABLE` inspection lines and `<group>:<partition>:<offset>` dead-letter
ids. Each parser raises ValueError with a message meant for the operator; typer turns
it into a usage error (exit code 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.catalogue import CONSUMER_GROUPS
from contracts.events.returns import ReturnReasonCode

RETURN_REASONS = tuple(reason.value for reason in ReturnReasonCode)


@dataclass(frozen=True)
class ReturnLine:
    sku: str
    quantity: int
    reason_code: str

    def as_body(self) -> dict[str, Any]:
        return {"sku": self.sku, "quantity": self.quantity, "reason_code": self.reason_code}


@dataclass(frozen=True)
class ReceivedLine:
    sku: str
    quantity: int
    restockable_quantity: int

    def as_body(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "restockable_quantity": self.restockable_quantity,
        }


@dataclass(frozen=True, order=True)
class DeadLetterId:
    group: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.group}:{self.partition}:{self.offset}"


def _three_parts(text: str, shape: str) -> tuple[str, str, str]:
    # The SKU comes first and SKUs hold no colon; splitting from the right keeps a
    # mistyped SKU whole in the error message.
    parts = text.strip().rsplit(":", 2)
    if len(parts) != 3 or not all(part.strip() for part in parts):
        raise ValueError(f"{text!r} is not {shape}")
    first, second, third = (part.strip() for part in parts)
    return first, second, third


def _count(text: str, what: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, not {value}")
    return value


def parse_return_line(text: str) -> ReturnLine:
    """`LAMP-1:2:damaged` → two units of LAMP-1 coming back damaged."""
    sku, quantity, reason = _three_parts(text, "SKU:QTY:REASON (e.g. LAMP-1:2:damaged)")
    if reason not in RETURN_REASONS:
        raise ValueError(f"reason {reason!r} is not one of {', '.join(RETURN_REASONS)}")
    return ReturnLine(sku, _count(quantity, "quantity", minimum=1), reason)


def parse_received_line(text: str) -> ReceivedLine:
    """`LAMP-1:2:1` → two units of LAMP-1 arrived, one of them fit to sell again."""
    sku, quantity, restockable = _three_parts(
        text, "SKU:QTY:RESTOCKABLE (e.g. LAMP-1:2:1 — 2 arrived, 1 can be sold again)"
    )
    received = _count(quantity, "quantity", minimum=1)
    fit = _count(restockable, "restockable quantity", minimum=0)
    if fit > received:
        raise ValueError(f"restockable quantity {fit} exceeds the {received} received")
    return ReceivedLine(sku, received, fit)


def parse_dead_letter_id(text: str) -> DeadLetterId:
    """`order:0:17` → the dead letter at offset 17 of partition 0 of the order group's
    dead-letter topic (the id `oms dead-letters list` shows)."""
    group, partition, offset = _three_parts(text, "<group>:<partition>:<offset> (e.g. order:0:17)")
    if group not in CONSUMER_GROUPS:
        raise ValueError(f"group {group!r} is not one of {', '.join(CONSUMER_GROUPS)}")
    return DeadLetterId(
        group, _count(partition, "partition", minimum=0), _count(offset, "offset", minimum=0)
    )
