"""Consumed batches of the order service against the real PostgreSQL: records applied
together, set-based, in one transaction; an order met twice sees its own first change;
the batch's orders locked in order id order; the unique channel order deciding between
concurrent intakes; a cost in statements that does not grow with the batch."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from contracts.base import Event, new_event_id
from contracts.events.notification import (
    NotificationChannel,
    NotificationSent,
    NotificationSkipped,
    NotificationSkipReason,
)
from contracts.events.returns import (
    RefundIssued,
    ReturnReasonCode,
    ReturnRequested,
    ReturnRequestLine,
)
from contracts.wire import encode
from services.kit.dead_letters import ConsumedRecord, DeadLetterPublisher
from services.kit.kafka import ResilientProducer
from services.kit.metrics import Metrics
from services.kit.pipeline import EventPipeline, Outcome
from services.kit.tables import outbox
from services.kit.unit_of_work import UnitOfWork
from services.order import db, domain, handlers, submissions
from services.order.rows import NewOrder
from services.order.submissions import IntakePolicy
from tests.kit.harness import started_producer
from tests.order.scene import (
    Scene,
    delivered,
    eur,
    order_fields,
    place,
    shipment_created,
    shipped,
    stock_reserved,
    submitted,
)

pytestmark = pytest.mark.integration

SOURCE = "/oms/test"
POLICY = IntakePolicy(deliverable_countries=frozenset({"FR"}))


class CountingConnection:
    """An asyncpg connection that notes the first line of every statement it runs."""

    def __init__(self, connection: asyncpg.Connection, statements: list[str]) -> None:
        self._connection = connection
        self._statements = statements

    def transaction(self) -> Any:
        return self._connection.transaction()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self._statements.append(query.strip().splitlines()[0])
        rows: list[asyncpg.Record] = await self._connection.fetch(query, *args)
        return rows

    async def execute(self, query: str, *args: Any) -> str:
        self._statements.append(query.strip().splitlines()[0])
        result: str = await self._connection.execute(query, *args)
        return result


class Batches:
    """The order service's consumed-event path (its router, the kit's pipeline) on the
    scene's database, fed records directly: each `apply` is one fetched batch."""

    def __init__(self, scene: Scene, producer: ResilientProducer) -> None:
        self.scene = scene
        self.statements: list[str] = []
        dsn = scene.database.url.render_as_string(hide_password=False)
        self._dsn = dsn.replace("+asyncpg", "")
        self._pipeline = EventPipeline(
            service="order",
            connect=self._connect,
            router=handlers.router(POLICY),
            source=SOURCE,
            unit_of_work=lambda cause: UnitOfWork(scene.database, source=SOURCE, cause=cause),
            dead_letters=DeadLetterPublisher(producer, "order-batches-test"),
            metrics=Metrics(),
            topic_names=scene.names,
            transient_retry_seconds=5.0,
        )

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[CountingConnection]:
        connection = await asyncpg.connect(self._dsn)
        try:
            yield CountingConnection(connection, self.statements)
        finally:
            await connection.close()

    async def apply(self, *events: Event) -> list[Outcome]:
        records = [
            ConsumedRecord(
                topic=self.scene.names.of_event(type(event)),
                partition=0,
                offset=offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
            )
            for offset, event in enumerate(events)
            for record in [encode(event, source=SOURCE)]
        ]
        return await self._pipeline.process_batch(records)


@pytest.fixture
async def batches(scene: Scene) -> AsyncIterator[Batches]:
    async with started_producer(scene.infrastructure.kafka_bootstrap_servers) as producer:
        yield Batches(scene, producer)


async def view(scene: Scene, order_id: str) -> dict[str, Any]:
    response = await scene.client.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def timeline_types(order: dict[str, Any]) -> list[str]:
    return sorted(entry["event_type"] for entry in order["timeline"])


async def test_each_event_of_an_order_sees_what_the_one_before_it_did(
    scene: Scene, batches: Batches
) -> None:
    order_id = await place(scene, {"SKU-A": 2})
    assert await batches.apply(shipment_created(order_id, "shp_1", {"SKU-A": 2})) == [
        Outcome.HANDLED
    ]

    outcomes = await batches.apply(
        stock_reserved(order_id),
        shipped(order_id, "shp_1", {"SKU-A": 2}),
        delivered(order_id, "shp_1"),
    )

    assert outcomes == [Outcome.HANDLED] * 3
    order = await view(scene, order_id)
    history = order["status_history"]
    assert [change["to_status"] for change in history] == [
        "placed",
        "confirmed",
        "shipped",
        "delivered",
    ]
    assert len({change["at"] for change in history[1:]}) == 1, "one transaction"
    [shipment] = order["shipments"]
    assert shipment["status"] == "delivered"
    assert shipment["planned_lines"] == [{"sku": "SKU-A", "quantity": 2}], "kept from before"
    assert shipment["tracking_number"] == "TRKshp_1"
    assert order["delivered_at"] is not None and order["reservation_id"] == f"res_{order_id}"
    assert timeline_types(order) == [
        "oms.Delivered.v1",
        "oms.OrderConfirmed.v1",
        "oms.OrderPlaced.v1",
        "oms.OrderSubmitted.v1",
        "oms.ShipmentCreated.v1",
        "oms.Shipped.v1",
        "oms.StockReserved.v1",
    ]


async def test_a_message_not_sent_joins_the_order_s_timeline(
    scene: Scene, batches: Batches
) -> None:
    order_id = await place(scene)
    skipped = NotificationSkipped(
        subject_key=order_id,
        notification_id="ntf_skipped",
        cause_event_id=uuid.uuid4(),
        cause_event_type="oms.OrderPlaced.v1",
        channel=NotificationChannel.EMAIL,
        template="order_placed",
        reason=NotificationSkipReason.CUSTOMER_HAS_NO_EMAIL,
    )

    assert await batches.apply(skipped) == [Outcome.HANDLED]

    [entry] = [
        e for e in (await view(scene, order_id))["timeline"] if e["source"] == "notification"
    ]
    assert entry["event_id"] == str(skipped.event_id)
    assert entry["summary"] == "email 'order_placed' not sent: customer_has_no_email"


@contextlib.contextmanager
def order_ids_drawn_as(unique: uuid.UUID, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The intake's next order id is known in advance: it is made of `unique`."""
    with monkeypatch.context() as patched:
        patched.setattr(submissions, "new_event_id", lambda: unique)
        yield domain.order_id_from(unique)


async def test_an_order_placed_by_a_batch_is_confirmed_by_the_same_batch(
    scene: Scene, batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission = submitted(order_fields({"SKU-A": 2}))
    with order_ids_drawn_as(new_event_id(), monkeypatch) as order_id:
        outcomes = await batches.apply(submission, stock_reserved(order_id))

    assert outcomes == [Outcome.HANDLED] * 2
    order = await view(scene, order_id)
    assert order["external_order_id"] == submission.external_order_id
    assert [change["to_status"] for change in order["status_history"]] == ["placed", "confirmed"]
    assert order["lines"][0]["quantity"] == 2
    assert timeline_types(order) == [
        "oms.OrderConfirmed.v1",
        "oms.OrderPlaced.v1",
        "oms.OrderSubmitted.v1",
        "oms.StockReserved.v1",
    ]


async def orders_of(scene: Scene, external_order_id: str) -> list[str]:
    async with scene.database.connect() as connection:
        result = await connection.execute(
            select(db.orders.c.order_id).where(db.orders.c.external_order_id == external_order_id)
        )
        return list(result.scalars())


async def announcements(scene: Scene, external_order_id: str) -> int:
    """How many OrderPlaced or OrderRejected of the channel order are in the outbox."""
    async with scene.database.connect() as connection:
        found = await connection.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.event_type.in_(["oms.OrderPlaced.v1", "oms.OrderRejected.v1"]))
            .where(func.convert_from(outbox.c.value, "UTF8").contains(external_order_id))
        )
    return found or 0


async def test_a_channel_order_submitted_twice_in_a_batch_is_placed_once(
    scene: Scene, batches: Batches
) -> None:
    fields = order_fields()
    first, again = submitted(fields), submitted(fields)

    assert await batches.apply(first, again) == [Outcome.HANDLED] * 2

    [order_id] = await orders_of(scene, first.external_order_id)
    order = await view(scene, order_id)
    outcomes = {
        entry["event_id"]: entry["details"]["outcome"]
        for entry in order["timeline"]
        if entry["event_type"] == "oms.OrderSubmitted.v1"
    }
    assert outcomes == {str(first.event_id): "placed", str(again.event_id): "duplicate"}
    assert [change["to_status"] for change in order["status_history"]] == ["placed"]
    assert await announcements(scene, first.external_order_id) == 1


async def test_a_channel_order_placed_meanwhile_makes_the_submission_its_duplicate(
    scene: Scene, batches: Batches
) -> None:
    """The batch finds no such order, places it, and waits on the unique constraint for
    the transaction that placed it first; once that one commits, the batch is applied
    again and answers the submission with the order already there."""
    submission = submitted(order_fields())
    winner = domain.order_id_from(new_event_id())
    async with scene.database.connect() as holding:
        await db.insert_order(
            holding,
            NewOrder(
                order_id=winner,
                channel=submission.channel,
                external_order_id=submission.external_order_id,
                status="placed",
            ),
        )
        racing = asyncio.create_task(batches.apply(submission))
        await asyncio.sleep(0.5)
        assert not racing.done(), "the batch's insert waits on the unique channel order"
        await holding.commit()

    assert await racing == [Outcome.HANDLED]
    assert await orders_of(scene, submission.external_order_id) == [winner]
    order = await view(scene, winner)
    [entry] = order["timeline"]
    assert (entry["event_id"], entry["details"]["outcome"]) == (
        str(submission.event_id),
        "duplicate",
    )
    assert order["status_history"] == [], "the batch placed nothing of its own"
    assert await announcements(scene, submission.external_order_id) == 0


async def test_a_batch_waits_for_a_command_holding_one_of_its_orders(
    scene: Scene, batches: Batches
) -> None:
    order_id = await place(scene)
    async with scene.runtime.unit_of_work() as command:
        assert await db.lock_order(command.connection, order_id) is not None
        applying = asyncio.create_task(batches.apply(stock_reserved(order_id)))
        await asyncio.sleep(0.5)
        assert not applying.done(), "the batch waits for the order's lock"

    assert await applying == [Outcome.HANDLED]
    assert (await view(scene, order_id))["status"] == "confirmed"


async def test_a_batch_locks_its_orders_in_order_id_order(scene: Scene, batches: Batches) -> None:
    """Waiting for the first of its orders, a batch holds none of the others: so two
    batches that share orders never wait for each other both ways."""
    first, second = sorted([await place(scene), await place(scene)])
    async with scene.runtime.unit_of_work() as command:
        assert await db.lock_order(command.connection, first) is not None
        waiting = asyncio.create_task(batches.apply(stock_reserved(second), stock_reserved(first)))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        other = await asyncio.wait_for(
            batches.apply(shipped(second, "shp_1", {"SKU-A": 2})), timeout=5
        )
        assert other == [Outcome.HANDLED], "the waiting batch does not hold the second order"

    assert await waiting == [Outcome.HANDLED] * 2
    assert (await view(scene, first))["status"] == "confirmed"
    second_statuses = [c["to_status"] for c in (await view(scene, second))["status_history"]]
    assert second_statuses == ["placed", "partially_shipped"], "confirmed after it shipped"


def an_order_s_news(order_id: str) -> list[Event]:
    """Twelve events about one order, and a new submission: every table is written."""
    return [
        stock_reserved(order_id),
        shipment_created(order_id, "shp_1", {"SKU-A": 2, "SKU-B": 1}),
        shipped(order_id, "shp_1", {"SKU-A": 2, "SKU-B": 1}),
        delivered(order_id, "shp_1"),
        ReturnRequested(
            order_id=order_id,
            return_id="rma_1",
            lines=(
                ReturnRequestLine(sku="SKU-B", quantity=1, reason_code=ReturnReasonCode.DAMAGED),
            ),
            requested_at=datetime.now(UTC),
        ),
        *(
            NotificationSent(
                subject_key=order_id,
                notification_id=f"ntf_{number}",
                cause_event_id=uuid.uuid4(),
                cause_event_type="oms.Shipped.v1",
                channel=NotificationChannel.EMAIL,
                recipient="ada@example.com",
                template="order_shipped",
                attempts=1,
            )
            for number in range(6)
        ),
        RefundIssued(
            order_id=order_id,
            return_id="rma_1",
            refund_id="re_1",
            amount=eur(1000),
            lines_amount=eur(1000),
            shipping_refunded=eur(0),
            policy="refund_shipping_when_fully_returned",
        ),
        submitted(order_fields()),
    ]


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    scene: Scene, batches: Batches
) -> None:
    one = await place(scene)
    ten = [await place(scene) for _ in range(10)]

    assert await batches.apply(*an_order_s_news(one)) == [Outcome.HANDLED] * 13
    for_one = list(batches.statements)
    batches.statements.clear()
    news = [event for order_id in ten for event in an_order_s_news(order_id)]
    assert await batches.apply(*news) == [Outcome.HANDLED] * 130

    assert batches.statements == for_one
    assert len(set(for_one)) == len(for_one), f"one statement per table: {for_one}"
    for order_id in [one, *ten]:
        assert (await view(scene, order_id))["status"] == "return_requested"
