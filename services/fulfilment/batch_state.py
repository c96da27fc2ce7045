"""What a batch of consumed events works on, read and written set-based on the batch's
asyncpg connection, and the automatic mode's reads and writes of shipments.

A consumed batch loads its orders' facts and their shipments with one query per table and
writes each table once at the end (`load`, `save`). Locks, so that replicas cannot
deadlock and never miss each other's effect:

- the orders' `order_facts` rows, created when new, in order id order: everything done to
  an order's shipments in response to events holds its row, so a StockReserved and an
  OrderCancelled of one order applied at once by two replicas are serialised;
- then the orders' shipments, in shipment id order: a warehouse's command or the
  automatic mode may be changing one of them (they lock single shipments, or skip the
  locked ones, and wait for nothing else while holding them).

The automatic mode claims due shipments with `FOR UPDATE SKIP LOCKED` (replicas share the
work and never wait for each other) and writes them back with one statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from contracts.base import Event
from contracts.events.common import Address
from services.fulfilment.db import Shipment, lines_json, parcels_json
from services.fulfilment.domain import Line, Parcel, ShipmentStatus


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What fulfilment learnt about an order from the order topic (which may be before
    its StockReserved arrives)."""

    cancelled_at: datetime | None
    cancellation_reason: str | None
    shipping_address: Address | None
    """The latest address the order was changed to; None when it never was."""
    address_changed_at: datetime | None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


@dataclass(slots=True)
class BatchState:
    """The batch's orders' facts and shipments, changed in memory event by event (so an
    order's second event sees its first's effect), and what changed, to be saved."""

    facts: dict[str, OrderFacts] = field(default_factory=dict)
    shipments: dict[str, Shipment] = field(default_factory=dict)
    shipment_ids_by_order: dict[str, list[str]] = field(default_factory=dict)
    changed_facts: set[str] = field(default_factory=set)
    created_shipments: set[str] = field(default_factory=set)
    changed_shipments: set[str] = field(default_factory=set)

    def facts_of(self, order_id: str) -> OrderFacts:
        return self.facts[order_id]

    def record_facts(self, order_id: str, facts: OrderFacts) -> None:
        self.facts[order_id] = facts
        self.changed_facts.add(order_id)

    def order_shipments(self, order_id: str) -> list[Shipment]:
        """The order's shipments in the order they were created (warehouse id breaking ties),
        as the HTTP listing shows them."""
        shipments = [
            self.shipments[shipment_id]
            for shipment_id in self.shipment_ids_by_order.get(order_id, ())
        ]
        return sorted(shipments, key=lambda shipment: (shipment.created_at, shipment.warehouse_id))

    def hold(self, shipment: Shipment) -> None:
        """A shipment as the batch read it (and holds it locked)."""
        self.shipments[shipment.shipment_id] = shipment
        self.shipment_ids_by_order.setdefault(shipment.order_id, []).append(shipment.shipment_id)

    def add_shipment(self, shipment: Shipment) -> None:
        self.hold(shipment)
        self.created_shipments.add(shipment.shipment_id)

    def update_shipment(self, shipment: Shipment) -> None:
        self.shipments[shipment.shipment_id] = shipment
        self.changed_shipments.add(shipment.shipment_id)


# An upsert that changes no value: creates the facts rows of new orders and locks (and
# reads) the others, in order id order, in one statement.
_LOCK_ORDER_FACTS = """
INSERT INTO order_facts (order_id)
SELECT order_id FROM unnest($1::text[]) AS batch(order_id) ORDER BY order_id
ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id
RETURNING order_id, cancelled_at, cancellation_reason, shipping_address, address_changed_at
"""
_UPDATE_ORDER_FACTS = """
UPDATE order_facts
SET cancelled_at = changed.cancelled_at,
    cancellation_reason = changed.cancellation_reason,
    shipping_address = changed.shipping_address,
    address_changed_at = changed.address_changed_at
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::timestamptz[])
    AS changed(order_id, cancelled_at, cancellation_reason, shipping_address, address_changed_at)
WHERE order_facts.order_id = changed.order_id
"""

_SHIPMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("shipment_id", "text"),
    ("order_id", "text"),
    ("warehouse_id", "text"),
    ("warehouse_country", "text"),
    ("reservation_id", "text"),
    ("status", "text"),
    ("lines", "jsonb"),
    ("shipping_speed", "text"),
    ("carrier", "text"),
    ("shipping_method", "text"),
    ("shipping_cost_minor", "bigint"),
    ("shipping_cost_currency", "text"),
    ("international", "boolean"),
    ("shipping_address", "jsonb"),
    ("customer_locale", "text"),
    ("notes", "text"),
    ("tracking_number", "text"),
    ("packages", "jsonb"),
    ("created_at", "timestamptz"),
    ("picked_at", "timestamptz"),
    ("packed_at", "timestamptz"),
    ("shipped_at", "timestamptz"),
    ("delivered_at", "timestamptz"),
    ("cancelled_at", "timestamptz"),
    ("cancellation_reason", "text"),
    ("updated_at", "timestamptz"),
    ("next_step_at", "timestamptz"),
)
"""Every column, in the order of `Shipment`'s fields and of `_row_of`."""
_CHANGING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("shipment_id", "text"),
    ("status", "text"),
    ("carrier", "text"),
    ("shipping_method", "text"),
    ("shipping_cost_minor", "bigint"),
    ("shipping_cost_currency", "text"),
    ("international", "boolean"),
    ("shipping_address", "jsonb"),
    ("tracking_number", "text"),
    ("packages", "jsonb"),
    ("picked_at", "timestamptz"),
    ("packed_at", "timestamptz"),
    ("shipped_at", "timestamptz"),
    ("delivered_at", "timestamptz"),
    ("cancelled_at", "timestamptz"),
    ("cancellation_reason", "text"),
    ("updated_at", "timestamptz"),
    ("next_step_at", "timestamptz"),
)
"""The key and what a shipment's steps, cancellation and re-planning change, in the order
of `_changes_of`."""


def _unnest(columns: tuple[tuple[str, str], ...]) -> str:
    arrays = ", ".join(f"${number}::{kind}[]" for number, (_, kind) in enumerate(columns, 1))
    return f"unnest({arrays})"


def _names(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(name for name, _ in columns)


_SHIPMENT_FIELDS = _names(_SHIPMENT_COLUMNS)
_LOCK_ORDER_SHIPMENTS = f"""
SELECT {_SHIPMENT_FIELDS} FROM shipments
WHERE order_id = ANY($1::text[])
ORDER BY shipment_id
FOR UPDATE
"""
_INSERT_SHIPMENTS = f"""
INSERT INTO shipments ({_SHIPMENT_FIELDS})
SELECT * FROM {_unnest(_SHIPMENT_COLUMNS)}
"""
_UPDATE_SHIPMENTS = f"""
UPDATE shipments
SET {", ".join(f"{name} = changed.{name}" for name, _ in _CHANGING_COLUMNS[1:])}
FROM {_unnest(_CHANGING_COLUMNS)} AS changed({_names(_CHANGING_COLUMNS)})
WHERE shipments.shipment_id = changed.shipment_id
"""
_ANY_DUE = "SELECT EXISTS (SELECT FROM shipments WHERE next_step_at <= $1::timestamptz)"
# Most overdue first; the ones another round holds are skipped, never waited for.
_CLAIM_DUE = f"""
SELECT {_SHIPMENT_FIELDS} FROM shipments
WHERE next_step_at <= $1::timestamptz
ORDER BY next_step_at
LIMIT $2::int
FOR UPDATE SKIP LOCKED
"""
_CLAIM_DUE_AMONG = f"""
SELECT {_SHIPMENT_FIELDS} FROM shipments
WHERE shipment_id = ANY($2::text[]) AND next_step_at <= $1::timestamptz
ORDER BY next_step_at
FOR UPDATE SKIP LOCKED
"""


async def load(connection: asyncpg.Connection, events: Sequence[Event]) -> BatchState:
    """The facts and shipments of the batch's orders, locked (see the module's docstring)."""
    # Every event fulfilment applies is an order's, keyed by its order id.
    order_ids = sorted({event.partition_key() for event in events})
    state = BatchState()
    if not order_ids:
        return state
    for row in await connection.fetch(_LOCK_ORDER_FACTS, order_ids):
        address = row["shipping_address"]
        state.facts[row["order_id"]] = OrderFacts(
            cancelled_at=row["cancelled_at"],
            cancellation_reason=row["cancellation_reason"],
            shipping_address=(
                Address.model_validate_json(address) if address is not None else None
            ),
            address_changed_at=row["address_changed_at"],
        )
    for row in await connection.fetch(_LOCK_ORDER_SHIPMENTS, order_ids):
        state.hold(_shipment_from(row))
    return state


async def save(connection: asyncpg.Connection, state: BatchState) -> None:
    """Writes what the batch changed: one statement per table and kind of change."""
    if state.changed_facts:
        changed = [(order_id, state.facts[order_id]) for order_id in sorted(state.changed_facts)]
        await connection.execute(
            _UPDATE_ORDER_FACTS,
            [order_id for order_id, _ in changed],
            [facts.cancelled_at for _, facts in changed],
            [facts.cancellation_reason for _, facts in changed],
            [
                facts.shipping_address.model_dump_json()
                if facts.shipping_address is not None
                else None
                for _, facts in changed
            ],
            [facts.address_changed_at for _, facts in changed],
        )
    created = [state.shipments[shipment_id] for shipment_id in sorted(state.created_shipments)]
    if created:
        await connection.execute(_INSERT_SHIPMENTS, *zip(*map(_row_of, created), strict=True))
    changed_shipments = sorted(state.changed_shipments - state.created_shipments)
    await update_shipments(
        connection, [state.shipments[shipment_id] for shipment_id in changed_shipments]
    )


async def any_due(connection: asyncpg.Connection, now: datetime) -> bool:
    """Whether a shipment's automatic step is due: one cheap query on the partial index
    of due shipments, so that an idle round costs no more."""
    due: bool = await connection.fetchval(_ANY_DUE, now)
    return due


async def claim_due(connection: asyncpg.Connection, now: datetime, limit: int) -> list[Shipment]:
    """Up to `limit` shipments due by `now`, most overdue first, locked until the
    transaction ends; shipments another round holds are skipped."""
    return [_shipment_from(row) for row in await connection.fetch(_CLAIM_DUE, now, limit)]


async def claim_due_among(
    connection: asyncpg.Connection, now: datetime, shipment_ids: Sequence[str]
) -> list[Shipment]:
    """`claim_due`, for these shipments only."""
    rows = await connection.fetch(_CLAIM_DUE_AMONG, now, list(shipment_ids))
    return [_shipment_from(row) for row in rows]


async def update_shipments(connection: asyncpg.Connection, shipments: Sequence[Shipment]) -> None:
    """Writes shipments the transaction holds locked, each once, with one statement."""
    if shipments:
        await connection.execute(_UPDATE_SHIPMENTS, *zip(*map(_changes_of, shipments), strict=True))


def _shipment_from(row: asyncpg.Record) -> Shipment:
    address, packages = row["shipping_address"], row["packages"]
    return Shipment(
        shipment_id=row["shipment_id"],
        order_id=row["order_id"],
        warehouse_id=row["warehouse_id"],
        warehouse_country=row["warehouse_country"],
        reservation_id=row["reservation_id"],
        status=ShipmentStatus(row["status"]),
        lines=tuple(Line(line["sku"], line["quantity"]) for line in json.loads(row["lines"])),
        shipping_speed=row["shipping_speed"],
        carrier=row["carrier"],
        shipping_method=row["shipping_method"],
        shipping_cost_minor=row["shipping_cost_minor"],
        shipping_cost_currency=row["shipping_cost_currency"],
        international=row["international"],
        shipping_address=json.loads(address) if address is not None else None,
        customer_locale=row["customer_locale"],
        notes=row["notes"],
        tracking_number=row["tracking_number"],
        packages=(
            tuple(
                Parcel(parcel["package_id"], parcel["weight_grams"])
                for parcel in json.loads(packages)
            )
            if packages is not None
            else None
        ),
        created_at=row["created_at"],
        picked_at=row["picked_at"],
        packed_at=row["packed_at"],
        shipped_at=row["shipped_at"],
        delivered_at=row["delivered_at"],
        cancelled_at=row["cancelled_at"],
        cancellation_reason=row["cancellation_reason"],
        updated_at=row["updated_at"],
        next_step_at=row["next_step_at"],
    )


def _row_of(shipment: Shipment) -> tuple[object, ...]:
    return (
        shipment.shipment_id,
        shipment.order_id,
        shipment.warehouse_id,
        shipment.warehouse_country,
        shipment.reservation_id,
        shipment.status.value,
        json.dumps(lines_json(shipment.lines)),
        shipment.shipping_speed,
        shipment.carrier,
        shipment.shipping_method,
        shipment.shipping_cost_minor,
        shipment.shipping_cost_currency,
        shipment.international,
        _json_or_none(shipment.shipping_address),
        shipment.customer_locale,
        shipment.notes,
        shipment.tracking_number,
        _parcels_or_none(shipment.packages),
        shipment.created_at,
        shipment.picked_at,
        shipment.packed_at,
        shipment.shipped_at,
        shipment.delivered_at,
        shipment.cancelled_at,
        shipment.cancellation_reason,
        shipment.updated_at,
        shipment.next_step_at,
    )


def _changes_of(shipment: Shipment) -> tuple[object, ...]:
    return (
        shipment.shipment_id,
        shipment.status.value,
        shipment.carrier,
        shipment.shipping_method,
        shipment.shipping_cost_minor,
        shipment.shipping_cost_currency,
        shipment.international,
        _json_or_none(shipment.shipping_address),
        shipment.tracking_number,
        _parcels_or_none(shipment.packages),
        shipment.picked_at,
        shipment.packed_at,
        shipment.shipped_at,
        shipment.delivered_at,
        shipment.cancelled_at,
        shipment.cancellation_reason,
        shipment.updated_at,
        shipment.next_step_at,
    )


def _json_or_none(value: object) -> str | None:
    return json.dumps(value) if value is not None else None


def _parcels_or_none(parcels: tuple[Parcel, ...] | None) -> str | None:
    return json.dumps(parcels_json(parcels)) if parcels is not None else None
