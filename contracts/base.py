"""The one base every event stands on, and the value types events share.

Events are frozen and reject unknown fields: a producer that sends something we do not
know about is told at once instead of having it silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar
from uuid import UUID

import iso4217
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from uuid6 import uuid7

SPEC_VERSION = 1


def new_event_id() -> UUID:
    """A time-ordered UUIDv7, so event ids sort by creation time in logs and tables."""
    return UUID(str(uuid7()))


def utc_now() -> datetime:
    return datetime.now(UTC)


def _to_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+02:00 is before the first UTC moment Python has
        raise ValueError("outside the range of dates in UTC") from None


CURRENCY_CODES = frozenset(currency.code for currency in iso4217.Currency)
"""Read once: every amount of every event names its currency."""


def _known_currency(code: str) -> str:
    if code not in CURRENCY_CODES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
CurrencyCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 alphabetic currency code",
        examples=["EUR"],
    ),
    AfterValidator(_known_currency),
]
Quantity = Annotated[int, Field(gt=0, le=1_000_000, description="A count of units, at least 1")]
Sku = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._:+ -]*[A-Za-z0-9._:+-])?$",
        description="Stock keeping unit: letters, digits and `. _ : + -`, with spaces inside "
        "(not at either end), as shops name their SKUs (`TEE RED-M`, "
        "`shopify-variant:4455`); no `/` or `#`, so that it fits in a URL path as it is",
    ),
]
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]


class ContractModel(BaseModel):
    """Strict, frozen, closed: wrong types and unknown fields are errors, not coercions."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Money(ContractModel):
    """An amount in the currency's minor unit (cents for EUR): never a float."""

    amount_minor: int = Field(
        ge=0, le=10**12, description="Amount in minor units of the currency", examples=[1999]
    )
    currency: CurrencyCode

    def __str__(self) -> str:
        """`45.39 EUR`, `4600 JPY`: major units with the currency's own number of decimals
        (ISO 4217), for logs, timelines and summaries."""
        exponent = iso4217.Currency(self.currency).exponent or 0
        return f"{Decimal(self.amount_minor).scaleb(-exponent):.{exponent}f} {self.currency}"


ENVELOPE_FIELDS = ("event_id", "occurred_at")


def _envelope_fields_required(schema: dict[str, Any]) -> None:
    """Every event on the wire carries its id and time; their defaults exist only for the
    producer's convenience. Say so in the exported schema, or generated consumer types
    would make them optional."""
    rest = [name for name in schema.get("required", []) if name not in ENVELOPE_FIELDS]
    schema["required"] = [*ENVELOPE_FIELDS, *rest]


class Event(ContractModel):
    """Fields every event carries. Subclasses are named in the past tense."""

    model_config = ConfigDict(json_schema_extra=_envelope_fields_required)

    VERSION: ClassVar[int] = 1

    event_id: UUID = Field(
        default_factory=new_event_id, description="Unique id of this event (UUIDv7)"
    )
    occurred_at: UtcDatetime = Field(
        default_factory=utc_now, description="When the fact happened, in UTC"
    )

    @classmethod
    def event_type(cls) -> str:
        """The CloudEvents `type`: stable across releases of one major version."""
        return f"oms.{cls.__name__}.v{cls.VERSION}"

    def partition_key(self) -> str:
        """The Kafka record key: all events of one order share it, so they stay in order."""
        raise NotImplementedError(f"{type(self).__name__} must define its partition key")

    def subject(self) -> str:
        """The CloudEvents `subject`: what the event is about (the order id, usually)."""
        return self.partition_key()


OrderId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="The order's id in this system",
        examples=["ord_01HZX3"],
    ),
]


class OrderEvent(Event):
    """An event about one order, keyed by its order id."""

    order_id: OrderId

    def partition_key(self) -> str:
        return self.order_id
