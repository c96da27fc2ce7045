"""Which consumed events call for anything: the types told by e-mail and those webhooks
subscribe to, as a replica last read them, with its own subscriptions counted at once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.kit import migrations
from services.kit.runtime import ServiceRuntime
from services.notification import db
from services.notification.app import MIGRATIONS
from services.notification.subscribed_types import EMAILED_TYPES, SubscribedTypes
from tests.infrastructure import Infrastructure
from tests.notification.receivers import free_port

CONFIRMED = "oms.OrderConfirmed.v1"
RESERVED = "oms.StockReserved.v1"
SHIPPED = "oms.Shipped.v1"


def test_the_types_told_by_email_are_the_planned_ones() -> None:
    assert SHIPPED in EMAILED_TYPES
    assert CONFIRMED not in EMAILED_TYPES


def test_until_the_subscribed_types_are_read_every_event_is_read() -> None:
    subscribed = SubscribedTypes(refresh_seconds=60)

    assert subscribed.reads(CONFIRMED)
    assert subscribed.may_include(SHIPPED)


async def test_a_subscription_made_while_the_types_are_read_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscribed = SubscribedTypes(refresh_seconds=60)

    async def read_before_the_new_subscription(_connection: AsyncConnection) -> frozenset[str]:
        subscribed.add([CONFIRMED])  # committed and counted while the read is under way
        return frozenset({SHIPPED})

    monkeypatch.setattr(db, "subscribed_event_types", read_before_the_new_subscription)
    await subscribed.refresh(cast(AsyncConnection, None))

    assert subscribed.reads(CONFIRMED)
    assert not subscribed.reads(RESERVED)


@pytest.fixture(scope="module")
async def engine(infrastructure: Infrastructure) -> AsyncIterator[AsyncEngine]:
    url = await infrastructure.create_database("notification_types")
    await asyncio.to_thread(migrations.upgrade, url, MIGRATIONS)
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


async def subscribe(engine: AsyncEngine, *event_types: str) -> str:
    subscription_id = f"whs_{uuid.uuid4().hex}"
    async with engine.begin() as connection:
        await connection.execute(
            insert(db.webhook_subscriptions).values(
                subscription_id=subscription_id,
                url=f"https://{subscription_id}.example.com",
                secret="whsec_test_0123456789abcdef",
                event_types=list(event_types),
            )
        )
    return subscription_id


async def unsubscribe(engine: AsyncEngine, subscription_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            delete(db.webhook_subscriptions).where(
                db.webhook_subscriptions.c.subscription_id == subscription_id
            )
        )


async def read_types(engine: AsyncEngine, *, refresh_seconds: float = 60) -> SubscribedTypes:
    subscribed = SubscribedTypes(refresh_seconds=refresh_seconds)
    async with engine.connect() as connection:
        await subscribed.refresh(connection)
    return subscribed


@pytest.mark.integration
async def test_once_read_only_the_emailed_and_subscribed_types_are_read(
    engine: AsyncEngine,
) -> None:
    subscription = await subscribe(engine, CONFIRMED)
    try:
        subscribed = await read_types(engine)
    finally:
        await unsubscribe(engine, subscription)

    assert subscribed.reads(CONFIRMED)
    assert subscribed.reads(SHIPPED)
    assert not subscribed.reads(RESERVED)
    assert not subscribed.may_include(SHIPPED)


@pytest.mark.integration
async def test_a_subscription_made_here_counts_at_once(engine: AsyncEngine) -> None:
    subscribed = await read_types(engine)
    assert not subscribed.reads(RESERVED)

    subscribed.add([RESERVED])

    assert subscribed.reads(RESERVED)


@pytest.mark.integration
async def test_a_deleted_subscription_stops_counting_at_the_next_read(
    engine: AsyncEngine,
) -> None:
    subscription = await subscribe(engine, RESERVED)
    subscribed = await read_types(engine)
    assert subscribed.reads(RESERVED)

    await unsubscribe(engine, subscription)
    async with engine.connect() as connection:
        await subscribed.refresh(connection)

    assert not subscribed.reads(RESERVED)


@pytest.mark.integration
async def test_following_keeps_the_known_types_while_the_database_is_away(
    engine: AsyncEngine,
) -> None:
    subscribed = await read_types(engine, refresh_seconds=0.05)
    away = create_async_engine(f"postgresql+asyncpg://oms:oms@127.0.0.1:{free_port()}/none")
    runtime = cast(ServiceRuntime, SimpleNamespace(engine=away))

    following = asyncio.create_task(subscribed.follow(runtime))
    await asyncio.sleep(0.3)  # several failed reads

    assert not following.done()
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    await away.dispose()
    assert subscribed.reads(SHIPPED)
    assert not subscribed.reads(CONFIRMED)
