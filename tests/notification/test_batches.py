"""Consumed events applied a batch at a time, on a migrated notification database: an order
seen twice in one batch sees its own first change, a batch reads and writes with a fixed
number of statements however many events it holds, and the first contact of an order
stays."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from asyncpg.connection import LoggedQuery

from contracts.base import Event
from contracts.events.notification import NotificationSkipped
from contracts.events.order import OrderConfirmed
from services.kit import migrations
from services.notification import batch_state
from services.notification.app import MIGRATIONS
from tests.infrastructure import Infrastructure
from tests.notification import samples
from tests.notification.batches import apply_batch, notification_router

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def database_url(infrastructure: Infrastructure) -> str:
    url = await infrastructure.create_database("notification_batches")
    await asyncio.to_thread(migrations.upgrade, url, MIGRATIONS)
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


def confirmed(order_id: str) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, reservation_id=f"res-{order_id}")


async def notified(connection: asyncpg.Connection, subject_key: str) -> set[tuple[object, ...]]:
    """(template, channel, recipient, status, skip reason) of each notification recorded."""
    rows = await connection.fetch(
        "SELECT template, channel, recipient, status, skip_reason FROM notifications"
        " WHERE subject_key = $1",
        subject_key,
    )
    return {tuple(row.values()) for row in rows}


async def contact_email(connection: asyncpg.Connection, order_id: str) -> object:
    return await connection.fetchval("SELECT email FROM contacts WHERE order_id = $1", order_id)


async def test_a_shipment_after_its_order_in_one_batch_goes_to_the_address_just_learnt(
    connection: asyncpg.Connection,
) -> None:
    order = new_order_id()
    address = f"{order}@example.com"

    await apply_batch(
        connection,
        [samples.order_placed(order, email=address), samples.shipped(order)],
        notification_router(),
    )

    assert await notified(connection, order) == {
        ("order_placed", "email", address, "pending", None),
        ("order_shipped", "email", address, "pending", None),
    }


async def test_a_shipment_before_its_order_in_one_batch_waits_for_the_address(
    connection: asyncpg.Connection,
) -> None:
    order = new_order_id()
    address = f"{order}@example.com"

    await apply_batch(
        connection,
        [samples.shipped(order), samples.order_placed(order, email=address)],
        notification_router(),
    )

    assert await notified(connection, order) == {
        ("order_shipped", "email", None, "pending", None),
        ("order_placed", "email", address, "pending", None),
    }


async def test_an_order_without_email_skips_each_customer_email_of_its_batch_and_says_so(
    connection: asyncpg.Connection,
) -> None:
    order = new_order_id()
    placed = samples.point_of_sale_order(order)
    cancelled = samples.order_cancelled(order)

    emitted = await apply_batch(connection, [placed, cancelled], notification_router())

    skipped = ("skipped", "customer_has_no_email")
    assert await notified(connection, order) == {
        ("order_placed", "email", None, *skipped),
        ("order_cancelled", "email", None, *skipped),
    }
    assert [row.event_type for row in emitted] == [NotificationSkipped.event_type()] * 2
    assert await contact_email(connection, order) is None


async def test_the_first_contact_of_an_order_stays_within_a_batch_and_after_it(
    connection: asyncpg.Connection,
) -> None:
    order = new_order_id()
    first, second, third = (f"{order}-{n}@example.com" for n in (1, 2, 3))

    await apply_batch(
        connection,
        [samples.order_placed(order, email=first), samples.order_placed(order, email=second)],
        notification_router(),
    )
    await apply_batch(connection, [samples.order_placed(order, email=third)], notification_router())

    assert await contact_email(connection, order) == first
    recipients = await connection.fetch(
        "SELECT recipient FROM notifications WHERE subject_key = $1", order
    )
    assert [row["recipient"] for row in recipients] == [first] * 3


async def test_webhooks_go_to_every_subscriber_of_each_type_of_the_batch(
    connection: asyncpg.Connection,
) -> None:
    order = new_order_id()
    both, delivered_only = (f"whs_{uuid.uuid4().hex}" for _ in range(2))
    await connection.executemany(
        "INSERT INTO webhook_subscriptions (subscription_id, url, secret, event_types)"
        " VALUES ($1, $2, 'whsec_test_0123456789abcdef', $3)",
        [
            (both, f"https://{both}.example.com", ["oms.Shipped.v1", "oms.Delivered.v1"]),
            (delivered_only, f"https://{delivered_only}.example.com", ["oms.Delivered.v1"]),
        ],
    )
    try:
        await apply_batch(
            connection,
            [samples.shipped(order), confirmed(order), samples.delivered(order)],
            notification_router(),
        )
    finally:
        await connection.execute(
            "DELETE FROM webhook_subscriptions WHERE subscription_id = ANY($1::text[])",
            [both, delivered_only],
        )

    rows = await connection.fetch(
        "SELECT cause_event_type, subscription_id FROM notifications"
        " WHERE subject_key = $1 AND channel = 'webhook'",
        order,
    )
    assert sorted((row["cause_event_type"], row["subscription_id"]) for row in rows) == sorted(
        [
            ("oms.Shipped.v1", both),
            ("oms.Delivered.v1", both),
            ("oms.Delivered.v1", delivered_only),
        ]
    )


@contextlib.contextmanager
def statements_run(connection: asyncpg.Connection) -> Iterator[list[str]]:
    """The statements the connection runs inside the block, transaction control left out."""
    statements: list[str] = []

    def log(query: LoggedQuery) -> None:
        if query.query.split()[0].upper().rstrip(";") not in ("BEGIN", "COMMIT", "ROLLBACK"):
            statements.append(query.query)

    connection.add_query_logger(log)
    try:
        yield statements
    finally:
        connection.remove_query_logger(log)


def orders_told(order_ids: list[str]) -> list[Event]:
    """Each order placed, shipped and delivered: three e-mails each."""
    return [
        event
        for order in order_ids
        for event in (
            samples.order_placed(order, email=f"{order}@example.com"),
            samples.shipped(order),
            samples.delivered(order),
        )
    ]


async def test_a_batch_costs_the_same_statements_however_many_events_it_holds(
    connection: asyncpg.Connection,
) -> None:
    # A connection's first statements also look its column types up, once: not counted.
    await apply_batch(connection, orders_told([new_order_id()]), notification_router())
    with statements_run(connection) as small:
        await apply_batch(connection, orders_told([new_order_id()]), notification_router())
    with statements_run(connection) as large:
        await apply_batch(
            connection, orders_told([new_order_id() for _ in range(20)]), notification_router()
        )

    # The contacts, the subscribers, then the new contacts and notifications.
    assert len(small) == len(large) == 4


def nothing_subscribed(_event_type: str) -> bool:
    return False


async def test_events_that_call_for_nothing_cost_no_statement(
    connection: asyncpg.Connection,
) -> None:
    with statements_run(connection) as statements:
        async with connection.transaction():
            state = await batch_state.load(
                connection, [confirmed(new_order_id())], may_be_subscribed=nothing_subscribed
            )
            await batch_state.save(connection, state)

    assert statements == []
    assert (state.contacts, state.subscribers, state.notifications) == ({}, {}, [])
