"""The order service's tables, and the queries of its HTTP commands, queries and background
job (SQLAlchemy; consumed batches read and write these tables through
`services.order.batch_state`). Reads come back as the typed rows of `services.order.rows`.

A command that changes an order first locks its row (`lock_order`), as a consumed batch
does: events of one order arrive on several topics and may be applied at once by
different consumers or replicas, and the lock makes them take turns with the commands.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Result,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import timeline
from services.order.rows import (
    HistoryRow,
    IdempotencyKeyRow,
    LineRow,
    NewOrder,
    NotificationRow,
    OrderRow,
    ProductRow,
    RefundRow,
    ReturnRow,
    ShipmentRow,
    StatusChange,
    TimelineRow,
)

metadata = MetaData()

NULLABLE_JSON = JSONB(none_as_null=True)
"""A JSONB column that may be empty: Python's None is stored as SQL NULL (as the consumed
batches store it), not as JSON null."""

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("external_order_id", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    # Rejected orders keep no amounts (their currencies may disagree) and, when they broke
    # the contract, nothing but their identity and reasons: these columns may be empty.
    Column("customer", NULLABLE_JSON),
    Column("currency", String(3)),
    Column("subtotal_minor", BigInteger),
    Column("shipping_charge_minor", BigInteger),
    Column("total_minor", BigInteger),
    Column("total_discounts_minor", BigInteger),
    Column("total_tax_minor", BigInteger),
    # The rest of the order's money (contracts.events.common.OrderPricing as JSON:
    # discounts, shipping lines, charges, taxes_included, billing address, payment).
    Column("pricing", NULLABLE_JSON),
    Column("shipping_address", NULLABLE_JSON),
    Column("shipping_speed", String(16)),
    Column("placed_at", DateTime(timezone=True)),
    Column("placed_by", String(128)),
    Column("notes", Text),
    Column("rejection_reasons", NULLABLE_JSON),
    Column("reservation_id", String(128)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("final_status", String(32)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The idempotency key of intake: one order per channel order, whatever the retries.
    UniqueConstraint("channel", "external_order_id", name="orders_channel_external_order_id_key"),
)
Index("orders_status", orders.c.status)
# The listing's keyset (newest first) and its customer filter.
Index("orders_created", orders.c.created_at, orders.c.order_id)
Index("orders_customer_id", orders.c.customer["customer_id"].astext)
Index(
    "orders_awaiting_completion",
    orders.c.status,
    orders.c.delivered_at,
    postgresql_where=text("completed_at IS NULL"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    # The channel's order of the lines, kept for display.
    Column("position", Integer, primary_key=True),
    Column("line_id", String(128), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("line_total_minor", BigInteger, nullable=False),
    # Lines stored before the money model have neither: no discount, no tax.
    Column("title", Text),
    Column("discounted_total_minor", BigInteger),
    Column("tax_minor", BigInteger),
    Column("pricing", NULLABLE_JSON),  # discount_allocations and tax_lines as JSON
)

order_status_history = Table(
    "order_status_history",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("order_id", String(64), ForeignKey("orders.order_id"), nullable=False),
    Column("from_status", String(32)),
    Column("to_status", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cause_event_id", Uuid),
    Column("command", String(64)),
    Column("actor", String(128), nullable=False),
)
Index("order_status_history_order", order_status_history.c.order_id, order_status_history.c.id)

order_shipments = Table(
    "order_shipments",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    Column("shipment_id", String(128), primary_key=True),
    # Filled by whichever of ShipmentCreated, Shipped, Delivered, ShipmentCancelled
    # arrives first; the others complete the row.
    Column("warehouse_id", String(128)),
    Column("carrier", String(128)),
    Column("shipping_method", String(128)),
    Column("tracking_number", String(128)),
    Column("planned_lines", NULLABLE_JSON),
    Column("shipped_lines", NULLABLE_JSON),
    Column("created_at", DateTime(timezone=True)),
    Column("shipped_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancellation_reason", String(32)),
)

order_returns = Table(
    "order_returns",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    Column("return_id", String(128), primary_key=True),
    Column("requested_lines", NULLABLE_JSON),
    Column("requested_at", DateTime(timezone=True)),
    Column("rejected_at", DateTime(timezone=True)),
    Column("returned_lines", NULLABLE_JSON),
    Column("returned_at", DateTime(timezone=True)),
)

order_refunds = Table(
    "order_refunds",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    Column("refund_id", String(128), primary_key=True),
    Column("return_id", String(128), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("lines_amount_minor", BigInteger, nullable=False),
    Column("shipping_refunded_minor", BigInteger, nullable=False),
    Column("goods_amount_minor", BigInteger),
    Column("tax_amount_minor", BigInteger),
    Column("shipping_amount_minor", BigInteger),
    Column("policy", String(128), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

order_notifications = Table(
    "order_notifications",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    Column("notification_id", String(128), primary_key=True),
    Column("cause_event_id", Uuid, nullable=False),
    Column("cause_event_type", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(512), nullable=False),
    Column("template", String(128), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)

order_idempotency_keys = Table(
    "order_idempotency_keys",
    metadata,
    # The client's Idempotency-Key of a POST /orders: one answer per key, for ever.
    Column("key", String(255), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("response_status", Integer, nullable=False),
    Column("order_id", String(64), ForeignKey("orders.order_id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

order_timeline = Table(
    "order_timeline",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("order_id", String(64), ForeignKey("orders.order_id"), nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("source", String(32), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("summary", String(500), nullable=False),
    Column("details", JSONB, nullable=False),
)
Index(
    "order_timeline_order",
    order_timeline.c.order_id,
    order_timeline.c.occurred_at,
    order_timeline.c.event_id,
)


# --- products -------------------------------------------------------------------------------


async def upsert_product(connection: AsyncConnection, sku: str, name: str, active: bool) -> None:
    statement = pg_insert(products).values(sku=sku, name=name, active=active)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[products.c.sku],
            set_={"name": name, "active": active, "updated_at": func.now()},
        )
    )


async def all_products(connection: AsyncConnection) -> list[ProductRow]:
    result = await connection.execute(select(products).order_by(products.c.sku))
    return [ProductRow(**row) for row in result.mappings()]


# Built once: every order taken over HTTP runs it, and building costs as much CPU as
# executing.
_SELLABLE_SKUS = select(products.c.sku).where(
    products.c.sku.in_(bindparam("skus", expanding=True)), products.c.active
)


async def sellable_skus(connection: AsyncConnection, skus: Collection[str]) -> frozenset[str]:
    result = await connection.execute(_SELLABLE_SKUS, {"skus": list(skus)})
    return frozenset(result.scalars().all())


# --- orders ---------------------------------------------------------------------------------


_INSERT_ORDER = (
    pg_insert(orders)
    .on_conflict_do_nothing(index_elements=[orders.c.channel, orders.c.external_order_id])
    .returning(orders.c.order_id)
)
_INSERT_LINES = insert(order_lines)
_ORDER_ID_BY_CHANNEL_ID = select(orders.c.order_id).where(
    orders.c.channel == bindparam("channel"),
    orders.c.external_order_id == bindparam("external_order_id"),
)
_ORDER = select(orders).where(orders.c.order_id == bindparam("order_id"))
# NO KEY UPDATE, as a consumed batch locks: the order's key never changes, and rows that
# refer to it (timeline entries, status history) need not wait for the lock to be added.
_LOCK_ORDER = _ORDER.with_for_update(key_share=True)
_INSERT_TIMELINE_ENTRY = pg_insert(order_timeline).on_conflict_do_nothing(
    index_elements=[order_timeline.c.event_id]
)
_CHANGE_STATUS = (
    update(orders)
    .where(
        orders.c.order_id == bindparam("key_order_id"),
        orders.c.status == bindparam("from_status"),
    )
    .values(status=bindparam("to_status"), updated_at=func.now())
)
_RECORD_STATUS = insert(order_status_history)


async def insert_order(connection: AsyncConnection, order: NewOrder) -> bool:
    """False when the channel order is already known (a concurrent submission of the same
    order waits on the unique constraint, then lands here)."""
    result = await connection.execute(_INSERT_ORDER, asdict(order))
    return result.first() is not None


async def insert_lines(connection: AsyncConnection, lines: Sequence[LineRow]) -> None:
    if lines:
        await connection.execute(_INSERT_LINES, [asdict(line) for line in lines])


async def order_id_by_channel_id(
    connection: AsyncConnection, channel: str, external_order_id: str
) -> str | None:
    result = await connection.execute(
        _ORDER_ID_BY_CHANNEL_ID, {"channel": channel, "external_order_id": external_order_id}
    )
    order_id: str | None = result.scalar()
    return order_id


async def order(connection: AsyncConnection, order_id: str) -> OrderRow | None:
    return _order_row(await connection.execute(_ORDER, {"order_id": order_id}))


async def lock_order(connection: AsyncConnection, order_id: str) -> OrderRow | None:
    return _order_row(await connection.execute(_LOCK_ORDER, {"order_id": order_id}))


def _order_row(result: Result[Any]) -> OrderRow | None:
    row = result.mappings().first()
    return None if row is None else OrderRow(**row)


async def set_shipping_address(
    connection: AsyncConnection, order_id: str, shipping_address: dict[str, Any]
) -> None:
    await connection.execute(
        update(orders)
        .where(orders.c.order_id == order_id)
        .values(shipping_address=shipping_address, updated_at=func.now())
    )


async def change_status(connection: AsyncConnection, change: StatusChange) -> bool:
    """Moves the order only if it is still in `change.from_status`, and writes the
    history."""
    result = await connection.execute(
        _CHANGE_STATUS,
        {
            "key_order_id": change.order_id,
            "from_status": change.from_status,
            "to_status": change.to_status,
        },
    )
    if result.rowcount != 1:
        return False
    await record_status(connection, change)
    return True


async def record_status(connection: AsyncConnection, change: StatusChange) -> None:
    await connection.execute(
        _RECORD_STATUS,
        {
            "order_id": change.order_id,
            "from_status": change.from_status,
            "to_status": change.to_status,
            "cause_event_id": change.cause.event_id,
            "command": change.cause.command,
            "actor": change.cause.actor,
        },
    )


async def lines_of(connection: AsyncConnection, order_id: str) -> list[LineRow]:
    result = await connection.execute(
        select(order_lines)
        .where(order_lines.c.order_id == order_id)
        .order_by(order_lines.c.position)
    )
    return [LineRow(**row) for row in result.mappings()]


async def history_of(connection: AsyncConnection, order_id: str) -> list[HistoryRow]:
    result = await connection.execute(
        select(order_status_history)
        .where(order_status_history.c.order_id == order_id)
        .order_by(order_status_history.c.id)
    )
    return [HistoryRow(**row) for row in result.mappings()]


async def find_orders(
    connection: AsyncConnection,
    *,
    channel: str | None = None,
    external_order_id: str | None = None,
    status: str | None = None,
    customer_id: str | None = None,
    placed_from: datetime | None = None,
    placed_before: datetime | None = None,
    placed_until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int,
) -> list[OrderRow]:
    """Newest first; `after` is the (created_at, order_id) of the last order already seen.
    `placed_before` excludes its bound, `placed_until` includes it."""
    statement = select(orders).order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
    conditions = [
        orders.c.channel == channel if channel is not None else None,
        orders.c.external_order_id == external_order_id if external_order_id is not None else None,
        orders.c.status == status if status is not None else None,
        orders.c.customer["customer_id"].astext == customer_id if customer_id is not None else None,
        orders.c.placed_at >= placed_from if placed_from is not None else None,
        orders.c.placed_at < placed_before if placed_before is not None else None,
        orders.c.placed_at <= placed_until if placed_until is not None else None,
        tuple_(orders.c.created_at, orders.c.order_id) < tuple_(*after)
        if after is not None
        else None,
    ]
    statement = statement.where(*(condition for condition in conditions if condition is not None))
    result = await connection.execute(statement.limit(limit))
    return [OrderRow(**row) for row in result.mappings()]


async def lock_completion_candidates(
    connection: AsyncConnection, *, delivered_before: datetime, limit: int
) -> list[OrderRow]:
    """Orders that may be due for completion, locked; rows another replica is completing
    (or a consumed batch is changing) are skipped rather than waited for."""
    result = await connection.execute(
        select(orders)
        .where(
            orders.c.completed_at.is_(None),
            (orders.c.status == "returned")
            | (
                orders.c.status.in_(("delivered", "partially_returned"))
                & (orders.c.delivered_at <= delivered_before)
            ),
        )
        .order_by(orders.c.delivered_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [OrderRow(**row) for row in result.mappings()]


async def mark_completed(
    connection: AsyncConnection, order_id: str, final_status: str, at: datetime
) -> bool:
    """Once only: False when the order was completed already."""
    result = await connection.execute(
        update(orders)
        .where(orders.c.order_id == order_id, orders.c.completed_at.is_(None))
        .values(completed_at=at, final_status=final_status, updated_at=func.now())
    )
    return result.rowcount == 1


# --- shipments, returns, refunds, notifications ---------------------------------------------


async def shipments_of(connection: AsyncConnection, order_id: str) -> list[ShipmentRow]:
    result = await connection.execute(
        select(order_shipments)
        .where(order_shipments.c.order_id == order_id)
        .order_by(order_shipments.c.shipment_id)
    )
    return [ShipmentRow(**row) for row in result.mappings()]


async def returns_of(connection: AsyncConnection, order_id: str) -> list[ReturnRow]:
    result = await connection.execute(
        select(order_returns)
        .where(order_returns.c.order_id == order_id)
        .order_by(order_returns.c.return_id)
    )
    return [ReturnRow(**row) for row in result.mappings()]


async def refunds_of(connection: AsyncConnection, order_id: str) -> list[RefundRow]:
    result = await connection.execute(
        select(order_refunds)
        .where(order_refunds.c.order_id == order_id)
        .order_by(order_refunds.c.issued_at)
    )
    return [RefundRow(**row) for row in result.mappings()]


async def notifications_of(connection: AsyncConnection, order_id: str) -> list[NotificationRow]:
    result = await connection.execute(
        select(order_notifications)
        .where(order_notifications.c.order_id == order_id)
        .order_by(order_notifications.c.sent_at)
    )
    return [NotificationRow(**row) for row in result.mappings()]


# --- idempotency keys -----------------------------------------------------------------------


async def idempotency_key(connection: AsyncConnection, key: str) -> IdempotencyKeyRow | None:
    result = await connection.execute(
        select(order_idempotency_keys).where(order_idempotency_keys.c.key == key)
    )
    row = result.mappings().first()
    return None if row is None else IdempotencyKeyRow(**row)


async def insert_idempotency_key(
    connection: AsyncConnection, *, key: str, body_hash: str, response_status: int, order_id: str
) -> bool:
    """False when the key is taken: a concurrent request with the same key waits on the
    primary key until the other transaction ends, then lands here."""
    result = await connection.execute(
        pg_insert(order_idempotency_keys)
        .values(key=key, body_hash=body_hash, response_status=response_status, order_id=order_id)
        .on_conflict_do_nothing(index_elements=[order_idempotency_keys.c.key])
        .returning(order_idempotency_keys.c.key)
    )
    return result.first() is not None


# --- timeline -------------------------------------------------------------------------------


async def insert_timeline_entry(
    connection: AsyncConnection, order_id: str, entry: timeline.Entry
) -> None:
    await connection.execute(_INSERT_TIMELINE_ENTRY, {**asdict(entry), "order_id": order_id})


async def timeline_of(connection: AsyncConnection, order_id: str) -> list[TimelineRow]:
    result = await connection.execute(
        select(order_timeline)
        .where(order_timeline.c.order_id == order_id)
        .order_by(order_timeline.c.occurred_at, order_timeline.c.event_id)
    )
    return [TimelineRow(**row) for row in result.mappings()]
