"""The notification service on the real broker and database, delivering to a real SMTP
server and a real webhook endpoint in the test process."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text

from contracts.base import Event
from contracts.events.notification import (
    NotificationAbout,
    NotificationFailed,
    NotificationSent,
    NotificationSkipped,
    NotificationSkipReason,
)
from services.kit.runtime import ServiceRuntime
from services.kit.topics import TopicNames
from services.notification import db, service
from services.notification.app import NotificationSettings, create_app
from services.notification.delivery import SmtpMailer
from services.notification.dispatcher import Dispatcher, DispatchSettings
from services.notification.domain import AttemptOutcome, Notification, RetryPolicy, SkipReason
from services.notification.templates import TemplateCatalogue
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually
from tests.notification import samples
from tests.notification.batches import apply_batch, notification_router
from tests.notification.receivers import (
    MailCollector,
    WebhookReceiver,
    free_port,
    smtp_server,
)
from tests.schema import differences_from_the_code
from tests.service_harness import (
    events_on,
    fresh_namespace,
    publish_events,
    running_service,
    settings_environment,
)

pytestmark = pytest.mark.integration

NOTIFICATION_TOPIC = "oms.notification.v1"
SECRET = "whsec_test_0123456789abcdef"
QUIET_SECONDS = 1.5
"""How long to keep watching for a message that must not come (many dispatcher rounds)."""


@dataclass
class System:
    infrastructure: Infrastructure
    names: TopicNames
    client: httpx.AsyncClient
    mail: MailCollector
    webhooks: WebhookReceiver
    runtime: ServiceRuntime

    async def publish(self, *events: Event) -> None:
        await publish_events(self.infrastructure, self.names, *events)

    async def outcomes(self, subject_key: str) -> list[Event]:
        events = await events_on(
            self.infrastructure,
            self.names,
            NOTIFICATION_TOPIC,
            expect=1,
            timeout=2.0,
            where=lambda event: getattr(event, "subject_key", None) == subject_key,
        )
        return events

    async def notifications(self, subject_key: str, **query: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/notifications", params={"subject_key": subject_key, **query}
        )
        assert response.status_code == 200
        found: list[dict[str, Any]] = response.json()
        return found


def fast_settings(
    infrastructure: Infrastructure, names: TopicNames, database_url: str, smtp_port: int
) -> NotificationSettings:
    return NotificationSettings(
        **settings_environment(infrastructure, names, database_url),
        notification_smtp_port=smtp_port,
        notification_smtp_timeout_seconds=2.0,
        notification_poll_seconds=0.1,
        notification_retry_base_seconds=0.05,
        notification_max_attempts=3,
    )


@pytest.fixture(scope="module")
async def system(infrastructure: Infrastructure) -> AsyncIterator[System]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("notification")
    with smtp_server() as (mail, smtp_port), WebhookReceiver().running() as webhooks:
        app = create_app(fast_settings(infrastructure, names, database_url, smtp_port))
        async with running_service(app) as client:
            yield System(infrastructure, names, client, mail, webhooks, app.state.runtime)


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


async def emails_arrive(mail: MailCollector, address: str, count: int) -> None:
    async def arrived() -> bool:
        return len(mail.to(address)) >= count

    await eventually(arrived, timeout=30)
    # Anything more would be a duplicate: give it time to show up.
    await asyncio.sleep(QUIET_SECONDS)
    assert len(mail.to(address)) == count


async def test_french_customer_gets_french_emails_for_order_and_shipment(
    system: System,
) -> None:
    order = new_order_id()
    address = f"{order}@example.com"

    await system.publish(
        samples.order_placed(order, locale="fr", email=address), samples.shipped(order)
    )

    await emails_arrive(system.mail, address, 2)
    messages = {message["Subject"]: message for message in system.mail.to(address)}
    assert set(messages) == {
        f"Nous avons bien reçu votre commande WS-{order}",
        f"Votre commande WS-{order} est en route",
    }
    shipment = messages[f"Votre commande WS-{order} est en route"]
    body = shipment.get_content()
    assert body.startswith("Bonjour Ada Lovelace,")
    assert "Transporteur : colissimo" in body
    assert "Numéro de suivi : 6A12345678901" in body
    assert shipment["From"] == "notifications@example.com"
    assert shipment["Content-Language"] == "fr"
    sent = [n for n in await system.notifications(order) if n["template"] == "order_shipped"]
    assert shipment["Message-ID"] == f"<{sent[0]['notification_id']}@example.com>"


async def test_redelivered_events_send_each_email_once(system: System) -> None:
    order = new_order_id()
    address = f"{order}@example.com"
    placed = samples.order_placed(order, locale="fr", email=address)
    shipped = samples.shipped(order)

    await system.publish(placed, shipped)
    await system.publish(placed, shipped)

    await emails_arrive(system.mail, address, 2)
    notifications = await system.notifications(order)
    assert sorted(n["template"] for n in notifications) == ["order_placed", "order_shipped"]
    assert all(n["status"] == "sent" and n["attempts"] == 1 for n in notifications)
    outcomes = await system.outcomes(order)
    assert sorted(type(event).__name__ for event in outcomes) == ["NotificationSent"] * 2
    assert {event.cause_event_id for event in outcomes if isinstance(event, NotificationSent)} == {
        placed.event_id,
        shipped.event_id,
    }


async def test_low_stock_alerts_purchasing_once(system: System) -> None:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"

    await system.publish(samples.low_stock(sku))

    async def alerted() -> bool:
        return any(sku in message["Subject"] for message in system.mail.messages)

    await eventually(alerted, timeout=30)
    await asyncio.sleep(QUIET_SECONDS)
    alerts = [message for message in system.mail.messages if sku in message["Subject"]]
    assert len(alerts) == 1
    assert alerts[0]["To"] == "purchasing@example.com"
    assert alerts[0]["Subject"] == f"Low stock: {sku} at wh-paris-1"
    outcomes = await system.outcomes(sku)
    assert len(outcomes) == 1
    sent = outcomes[0]
    assert isinstance(sent, NotificationSent)
    assert (sent.recipient, sent.template, sent.cause_event_type) == (
        "purchasing@example.com",
        "low_stock",
        "oms.LowStockDetected.v1",
    )


async def test_failed_reservation_alerts_operations(system: System) -> None:
    order = new_order_id()

    await system.publish(samples.stock_reservation_failed(order))

    async def alerted() -> bool:
        return any(order in message["Subject"] for message in system.mail.messages)

    await eventually(alerted, timeout=30)
    alert = next(message for message in system.mail.messages if order in message["Subject"])
    assert alert["To"] == "operations@example.com"
    assert "- MUG-01: 2 requested, 0 available" in alert.get_content()


async def test_shipment_seen_before_its_order_is_told_once_the_order_arrives(
    system: System,
) -> None:
    order = new_order_id()
    address = f"{order}@example.com"

    await system.publish(samples.shipped(order))

    async def waiting_for_address() -> bool:
        return [(n["status"], n["recipient"]) for n in await system.notifications(order)] == [
            ("pending", None)
        ]

    await eventually(waiting_for_address, timeout=30)
    await asyncio.sleep(QUIET_SECONDS)
    assert system.mail.to(address) == []
    assert (await system.notifications(order))[0]["attempts"] == 0

    await system.publish(samples.order_placed(order, locale="en", email=address))

    await emails_arrive(system.mail, address, 2)
    assert {message["Subject"] for message in system.mail.to(address)} == {
        f"We have your order WS-{order}",
        f"Your order WS-{order} is on its way",
    }
    notifications = await system.notifications(order, status="sent")
    assert {n["recipient"] for n in notifications} == {address}
    assert len(notifications) == 2


async def test_an_order_without_email_sends_the_customer_nothing_and_tells_teams_and_webhooks(
    system: System,
) -> None:
    order = new_order_id()
    path = f"/hooks/{order}"
    created = await system.client.post(
        "/webhook-subscriptions",
        json={
            "url": f"{system.webhooks.base_url}{path}",
            "secret": SECRET,
            "event_types": ["oms.OrderPlaced.v1"],
        },
    )
    assert created.status_code == 201
    placed = samples.point_of_sale_order(order)
    try:
        await system.publish(
            placed, samples.stock_reservation_failed(order), samples.order_cancelled(order)
        )

        async def all_settled() -> bool:
            notifications = await system.notifications(order)
            return len(notifications) == 4 and all(
                n["status"] in ("sent", "skipped") for n in notifications
            )

        await eventually(all_settled, timeout=30)
    finally:
        await system.client.delete(f"/webhook-subscriptions/{created.json()['subscription_id']}")
    notifications = {n["template"]: n for n in await system.notifications(order)}
    assert set(notifications) == {
        "order_placed",
        "order_cancelled",
        "stock_reservation_failed",
        "webhook",
    }
    for template in ("order_placed", "order_cancelled"):
        skipped = notifications[template]
        assert (skipped["status"], skipped["skip_reason"]) == ("skipped", "customer_has_no_email")
        assert (skipped["recipient"], skipped["attempts"], skipped["last_error"]) == (None, 0, None)
    assert notifications["stock_reservation_failed"]["status"] == "sent"
    assert notifications["webhook"]["status"] == "sent"
    [alert] = [message for message in system.mail.messages if order in message["Subject"]]
    assert alert["To"] == "operations@example.com"
    [call] = system.webhooks.calls_to(path)
    assert call.headers["X-OMS-Event-Id"] == str(placed.event_id)
    await asyncio.sleep(QUIET_SECONDS)
    assert not any(
        placed.external_order_id in message["Subject"] for message in system.mail.messages
    )
    outcomes = await system.outcomes(order)
    assert sorted(described(outcomes)) == [
        ("NotificationSent", "stock_reservation_failed"),
        ("NotificationSent", "webhook"),
        ("NotificationSkipped", "order_cancelled"),
        ("NotificationSkipped", "order_placed"),
    ]
    assert {event.reason for event in outcomes if isinstance(event, NotificationSkipped)} == {
        NotificationSkipReason.CUSTOMER_HAS_NO_EMAIL
    }
    async with system.runtime.engine.connect() as connection:
        contact = (await db.contacts_of(connection, [order])).get(order)
    assert contact is not None
    assert (contact.email, contact.name, contact.locale) == (None, None, "fr")


def described(outcomes: list[Event]) -> list[tuple[str, str]]:
    """(event type, template) of each notification outcome."""
    assert all(isinstance(event, NotificationAbout) for event in outcomes)
    return [
        (type(event).__name__, event.template)
        for event in outcomes
        if isinstance(event, NotificationAbout)
    ]


async def test_an_email_waiting_for_an_order_without_email_is_skipped_once_the_order_arrives(
    system: System,
) -> None:
    order = new_order_id()

    await system.publish(samples.shipped(order))

    async def waiting_for_address() -> bool:
        return [n["status"] for n in await system.notifications(order)] == ["pending"]

    await eventually(waiting_for_address, timeout=30)

    await system.publish(samples.point_of_sale_order(order))

    async def skipped() -> bool:
        found = await system.notifications(order, status="skipped")
        return sorted(n["template"] for n in found) == ["order_placed", "order_shipped"]

    await eventually(skipped, timeout=30)
    [shipment] = await system.notifications(order, status="skipped", limit="1")
    assert (shipment["skip_reason"], shipment["attempts"]) == ("customer_has_no_email", 0)
    await asyncio.sleep(QUIET_SECONDS)
    assert not any(order in message["Subject"] for message in system.mail.messages)
    assert [n["status"] for n in await system.notifications(order)] == ["skipped", "skipped"]
    outcomes = await system.outcomes(order)
    assert sorted(described(outcomes)) == [
        ("NotificationSkipped", "order_placed"),
        ("NotificationSkipped", "order_shipped"),
    ]


async def test_recording_an_event_again_keeps_one_message_per_recipient(system: System) -> None:
    """Beyond the inbox: the (event, recipient, channel) constraint itself, for a known
    recipient and for a customer whose address is not known yet."""
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    order = new_order_id()
    assert system.runtime.pool is not None
    for event in (samples.low_stock(sku), samples.shipped(order)):
        for _ in range(2):
            async with system.runtime.pool.acquire() as connection:
                await apply_batch(connection, [event], notification_router())

    assert len(await system.notifications(sku)) == 1
    assert len(await system.notifications(order)) == 1


async def claimed_notification(
    system: System, subject_key: str, *, recipient: str | None
) -> Notification:
    """A notification as the dispatcher holds it after claiming it, due only in an hour so
    the running dispatcher leaves it alone."""
    event = samples.low_stock(subject_key)
    notification_id = service.new_notification_id()
    async with system.runtime.unit_of_work() as uow:
        await uow.connection.execute(
            insert(db.notifications),
            [
                {
                    "notification_id": notification_id,
                    "cause_event_id": event.event_id,
                    "cause_event_type": event.event_type(),
                    "subject_key": subject_key,
                    "channel": "email",
                    "audience": "purchasing",
                    "recipient": recipient,
                    "template": "low_stock",
                    "subscription_id": None,
                    "payload": event.model_dump_json(),
                    "status": "pending",
                    "attempts": 1,
                    "next_attempt_at": datetime.now(UTC) + timedelta(hours=1),
                }
            ],
        )
    async with system.runtime.engine.connect() as connection:
        claimed = await service.notification(connection, notification_id)
    assert claimed is not None
    return claimed


async def test_an_outcome_that_cannot_be_recorded_does_not_hold_back_the_round(
    system: System,
) -> None:
    """The round's outcomes are recorded together; when that fails for good (here: a
    notification without a recipient cannot be reported sent), each is recorded alone."""
    healthy_sku, broken_sku = (f"SKU-{uuid.uuid4().hex[:8]}" for _ in range(2))
    healthy = await claimed_notification(system, healthy_sku, recipient="purchasing@example.com")
    broken = await claimed_notification(system, broken_sku, recipient=None)
    dispatcher = Dispatcher(
        DispatchSettings(
            mailer=SmtpMailer("127.0.0.1", free_port(), "notifications@example.com", 2.0),
            retry=RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=1)),
            internal_locale="en",
            smtp_connections=1,
            webhook_timeout_seconds=2.0,
            poll_seconds=0.1,
            batch_size=20,
            claim_lease=timedelta(seconds=60),
        ),
        TemplateCatalogue(),
    )

    await dispatcher.record_outcomes(
        system.runtime, [AttemptOutcome(broken), AttemptOutcome(healthy)]
    )

    [sent] = await system.notifications(healthy_sku)
    assert (sent["status"], sent["attempts"]) == ("sent", 1)
    [reported] = await system.outcomes(healthy_sku)
    assert isinstance(reported, NotificationSent)
    assert reported.notification_id == healthy.notification_id
    [left] = await system.notifications(broken_sku)
    assert (left["status"], left["attempts"]) == ("pending", 1)
    assert await system.outcomes(broken_sku) == []


async def test_the_migrations_create_exactly_the_tables_of_the_code(system: System) -> None:
    assert await differences_from_the_code(system.runtime.engine, db.metadata) == []
    async with system.runtime.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM alembic_version")) == 2


async def test_a_skip_recorded_after_its_claim_was_lost_changes_nothing(system: System) -> None:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    claimed = await claimed_notification(system, sku, recipient=None)
    overtaken = dataclasses.replace(claimed, attempts=claimed.attempts - 1)
    policy = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=1))
    reason = SkipReason.CUSTOMER_HAS_NO_EMAIL

    async with system.runtime.unit_of_work() as uow:
        await service.record_outcomes(
            uow, [AttemptOutcome(overtaken, skipped=reason)], policy=policy, now=datetime.now(UTC)
        )
    [left] = await system.notifications(sku)
    assert (left["status"], left["attempts"], left["skip_reason"]) == ("pending", 1, None)

    async with system.runtime.unit_of_work() as uow:
        await service.record_outcomes(
            uow, [AttemptOutcome(claimed, skipped=reason)], policy=policy, now=datetime.now(UTC)
        )
    [skipped] = await system.notifications(sku)
    assert (skipped["status"], skipped["attempts"], skipped["skip_reason"]) == (
        "skipped",
        0,
        "customer_has_no_email",
    )


async def test_webhook_subscriber_receives_a_signed_post(system: System) -> None:
    url = f"{system.webhooks.base_url}/hooks/erp"
    created = await system.client.post(
        "/webhook-subscriptions",
        json={"url": url, "secret": SECRET, "event_types": ["oms.Delivered.v1"]},
    )
    assert created.status_code == 201
    order = new_order_id()
    delivered = samples.delivered(order)

    await system.publish(delivered)

    async def called() -> bool:
        return bool(system.webhooks.calls_to("/hooks/erp"))

    await eventually(called, timeout=30)
    await asyncio.sleep(QUIET_SECONDS)
    calls = [
        call
        for call in system.webhooks.calls_to("/hooks/erp")
        if call.headers["X-OMS-Event-Id"] == str(delivered.event_id)
    ]
    assert len(calls) == 1
    call = calls[0]
    expected = hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(call.headers["X-OMS-Signature"], f"sha256={expected}")
    assert call.headers["X-OMS-Event-Type"] == "oms.Delivered.v1"
    assert abs(int(call.headers["X-OMS-Timestamp"]) - time.time()) < 60
    assert json.loads(call.body) == json.loads(delivered.model_dump_json())

    async def webhook_sent() -> bool:
        return any(
            isinstance(event, NotificationSent) and event.channel == "webhook"
            for event in await system.outcomes(order)
        )

    await eventually(webhook_sent, timeout=30)


async def test_a_refusing_webhook_is_retried_then_reported_failed(system: System) -> None:
    url = f"{system.webhooks.base_url}/failing/crm"
    created = await system.client.post(
        "/webhook-subscriptions",
        json={"url": url, "secret": SECRET, "event_types": ["oms.ReturnApproved.v1"]},
    )
    assert created.status_code == 201
    order = new_order_id()

    await system.publish(samples.return_approved(order))

    async def reported() -> bool:
        return any(isinstance(event, NotificationFailed) for event in await system.outcomes(order))

    await eventually(reported, timeout=30)
    failed = next(e for e in await system.outcomes(order) if isinstance(e, NotificationFailed))
    assert (failed.channel, failed.recipient, failed.attempts) == ("webhook", url, 3)
    assert failed.error == "DeliveryRefused: webhook answered HTTP 500"
    assert len(system.webhooks.calls_to("/failing/crm")) == 3
    [webhook] = await system.notifications(order, status="failed")
    assert webhook["last_error"] == failed.error


async def test_webhook_subscriptions_over_http(system: System) -> None:
    url = f"{system.webhooks.base_url}/hooks/bi"
    body = {"url": url, "secret": SECRET, "event_types": ["oms.Shipped.v1", "oms.Shipped.v1"]}

    created = await system.client.post("/webhook-subscriptions", json=body)
    assert created.status_code == 201
    subscription = created.json()
    assert subscription["url"] == url
    assert subscription["event_types"] == ["oms.Shipped.v1"]
    assert "secret" not in subscription

    again = await system.client.post("/webhook-subscriptions", json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "url_already_subscribed"
    assert again.json()["subscription_id"] == subscription["subscription_id"]

    listed = (await system.client.get("/webhook-subscriptions")).json()
    assert subscription in listed
    assert all("secret" not in entry for entry in listed)

    deleted = await system.client.delete(
        f"/webhook-subscriptions/{subscription['subscription_id']}"
    )
    assert deleted.status_code == 204
    assert subscription not in (await system.client.get("/webhook-subscriptions")).json()
    gone = await system.client.delete(f"/webhook-subscriptions/{subscription['subscription_id']}")
    assert gone.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1/x", "secret": SECRET, "event_types": ["oms.Unknown.v1"]},
        {"url": "http://127.0.0.1/x", "secret": SECRET, "event_types": []},
        {"url": "ftp://127.0.0.1/x", "secret": SECRET, "event_types": ["oms.Shipped.v1"]},
        {"url": "http://127.0.0.1/x", "secret": "short", "event_types": ["oms.Shipped.v1"]},
        {
            "url": "http://127.0.0.1/" + "x" * 500,
            "secret": SECRET,
            "event_types": ["oms.Shipped.v1"],
        },
    ],
)
async def test_invalid_subscription_is_refused(system: System, body: dict[str, Any]) -> None:
    response = await system.client.post("/webhook-subscriptions", json=body)
    assert response.status_code == 422


async def test_unknown_notification_is_404(system: System) -> None:
    response = await system.client.get("/notifications/ntf_unknown")
    assert response.status_code == 404


async def test_known_notification_is_found_by_id(system: System) -> None:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    await system.publish(samples.low_stock(sku))

    async def recorded() -> bool:
        return bool(await system.notifications(sku))

    await eventually(recorded, timeout=30)
    [listed] = await system.notifications(sku)
    response = await system.client.get(f"/notifications/{listed['notification_id']}")
    assert response.status_code == 200
    assert response.json()["subject_key"] == sku
    assert response.json()["channel"] == "email"


@pytest.fixture(scope="module")
async def struggling(infrastructure: Infrastructure) -> AsyncIterator[System]:
    """A service whose mail server is down, retrying a second later, then two later."""
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("notification")
    settings = fast_settings(infrastructure, names, database_url, smtp_port=free_port())
    settings = settings.model_copy(update={"notification_retry_base_seconds": 1.0})
    app = create_app(settings)
    with WebhookReceiver().running() as webhooks:
        async with running_service(app) as client:
            yield System(
                infrastructure, names, client, MailCollector(), webhooks, app.state.runtime
            )


async def reported_failure(system: System, subject_key: str) -> NotificationFailed:
    async def failures() -> list[NotificationFailed]:
        return [
            event
            for event in await system.outcomes(subject_key)
            if isinstance(event, NotificationFailed)
        ]

    async def reported() -> bool:
        return bool(await failures())

    await eventually(reported, timeout=60)
    [failure] = await failures()
    return failure


async def test_unreachable_mail_server_is_retried_then_reported_failed(
    struggling: System,
) -> None:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"

    await struggling.publish(samples.low_stock(sku))

    failure = await reported_failure(struggling, sku)
    assert (failure.recipient, failure.channel, failure.attempts) == (
        "purchasing@example.com",
        "email",
        3,
    )
    [notification] = await struggling.notifications(sku)
    assert notification["status"] == "failed"
    assert notification["attempts"] == 3
    assert notification["last_error"] == failure.error
    assert not any(isinstance(event, NotificationSent) for event in await struggling.outcomes(sku))
    assert await struggling.notifications(sku, status="sent") == []


async def test_webhook_owed_to_a_deleted_subscription_is_reported_failed(
    struggling: System,
) -> None:
    url = f"{struggling.webhooks.base_url}/failing/leaving"
    created = await struggling.client.post(
        "/webhook-subscriptions",
        json={"url": url, "secret": SECRET, "event_types": ["oms.Shipped.v1"]},
    )
    subscription_id = created.json()["subscription_id"]
    order = new_order_id()

    await struggling.publish(samples.shipped(order))

    async def first_attempt_made() -> bool:
        return bool(struggling.webhooks.calls_to("/failing/leaving"))

    await eventually(first_attempt_made, timeout=30)
    deleted = await struggling.client.delete(f"/webhook-subscriptions/{subscription_id}")
    assert deleted.status_code == 204

    failure = await reported_failure(struggling, order)
    assert (failure.channel, failure.recipient, failure.attempts) == ("webhook", url, 2)
    assert failure.error == f"webhook subscription {subscription_id} was deleted"
    assert len(struggling.webhooks.calls_to("/failing/leaving")) == 1
