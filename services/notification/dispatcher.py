"""The dispatcher: a background job that delivers recorded notifications.

Each round claims the due notifications (a short transaction; see `db.claim_due`), delivers
them concurrently with no transaction open, and records each outcome in a unit of work of
its own: sent (emitting NotificationSent), retried later with exponential backoff, or
failed for good after the last attempt (emitting NotificationFailed).

Delivery is at least once. An outcome that cannot be recorded because the database is
briefly away is retried for most of the claim's lease, so an outage does not repeat a
message. A process that dies after the mail server or the webhook took a message, but
before the outcome was recorded, leaves the notification claimed; when the claim's lease
runs out it is delivered again. E-mails carry a Message-ID derived from
the notification id, so mail systems drop the repeat; webhook receivers can de-duplicate
on `X-OMS-Event-Id`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from services.kit.errors import is_transient
from services.kit.logs import get_logger
from services.kit.runtime import ServiceRuntime
from services.kit.unit_of_work import Cause, UnitOfWork
from services.notification import service
from services.notification.delivery import DeliveryRefused, SmtpMailer, post_webhook
from services.notification.domain import Channel, Notification, RetryPolicy
from services.notification.templates import TemplateCatalogue

log = get_logger(__name__)


@dataclass(frozen=True)
class DispatchSettings:
    mailer: SmtpMailer
    retry: RetryPolicy
    internal_locale: str
    webhook_timeout_seconds: float
    poll_seconds: float
    batch_size: int
    claim_lease: timedelta


class Dispatcher:
    def __init__(self, settings: DispatchSettings, catalogue: TemplateCatalogue) -> None:
        self._settings = settings
        self._catalogue = catalogue

    async def run(self, runtime: ServiceRuntime) -> None:
        """Delivers due notifications for the life of the service."""
        async with httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_seconds, follow_redirects=False
        ) as client:
            while True:
                try:
                    claimed = await self.dispatch_due(runtime, client)
                except Exception as error:
                    # The database is away: try again next round, never stop the job.
                    log.warning("dispatch round failed", error=repr(error))
                    claimed = 0
                if claimed < self._settings.batch_size:
                    await asyncio.sleep(self._settings.poll_seconds)

    async def dispatch_due(self, runtime: ServiceRuntime, client: httpx.AsyncClient) -> int:
        """One round: claims due notifications and attempts each; returns how many."""
        async with runtime.unit_of_work() as uow:
            claimed = await service.claim_due(
                uow,
                now=datetime.now(UTC),
                limit=self._settings.batch_size,
                lease=self._settings.claim_lease,
            )
        results = await asyncio.gather(
            *(self._attempt(runtime, client, notification) for notification in claimed),
            return_exceptions=True,
        )
        for notification, result in zip(claimed, results, strict=True):
            if isinstance(result, Exception):
                # The outcome could not be recorded; the claim's lease brings it back.
                log.warning(
                    "delivery outcome not recorded",
                    notification_id=notification.notification_id,
                    error=repr(result),
                )
        return len(claimed)

    async def _attempt(
        self, runtime: ServiceRuntime, client: httpx.AsyncClient, claimed: Notification
    ) -> None:
        try:
            await self._deliver(runtime, client, claimed)
        except _SubscriptionGone as gone:
            async for attempt in self._recording_retries():
                with attempt:
                    async with _unit_of_work(runtime, claimed) as uow:
                        await service.give_up(uow, claimed, error=str(gone), now=datetime.now(UTC))
            return
        except Exception as error:
            description = f"{type(error).__name__}: {error}"
            log.warning(
                "delivery attempt failed",
                notification_id=claimed.notification_id,
                attempt=claimed.attempts,
                error=description,
            )
            async for attempt in self._recording_retries():
                with attempt:
                    async with _unit_of_work(runtime, claimed) as uow:
                        await service.record_failed_attempt(
                            uow,
                            claimed,
                            error=description,
                            policy=self._settings.retry,
                            now=datetime.now(UTC),
                        )
            return
        async for attempt in self._recording_retries():
            with attempt:
                async with _unit_of_work(runtime, claimed) as uow:
                    await service.record_delivered(uow, claimed, now=datetime.now(UTC))
        log.info(
            "notification sent",
            notification_id=claimed.notification_id,
            channel=claimed.channel.value,
        )

    def _recording_retries(self) -> AsyncRetrying:
        """Retries of recording an outcome while the database is away, stopping well
        inside the lease: past it the notification may be claimed and sent again."""
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            stop=stop_after_delay(self._settings.claim_lease.total_seconds() * 0.75),
            reraise=True,
        )

    async def _deliver(
        self, runtime: ServiceRuntime, client: httpx.AsyncClient, claimed: Notification
    ) -> None:
        if claimed.recipient is None:
            raise DeliveryRefused("the recipient is not known")
        if claimed.channel is Channel.EMAIL:
            async with runtime.engine.connect() as connection:
                rendered = await service.compose_email(
                    connection, claimed, self._catalogue, self._settings.internal_locale
                )
            await self._settings.mailer.send(claimed.notification_id, claimed.recipient, rendered)
            return
        async with runtime.engine.connect() as connection:
            subscription = await service.webhook_subscription(connection, claimed)
        if subscription is None:
            raise _SubscriptionGone(f"webhook subscription {claimed.subscription_id} was deleted")
        await post_webhook(
            client,
            url=claimed.recipient,
            secret=subscription.secret,
            event_type=claimed.cause_event_type,
            event_id=claimed.cause_event_id,
            body=claimed.payload.encode(),
        )


class _SubscriptionGone(Exception):
    """The webhook's subscription was deleted: trying again cannot help."""


def _unit_of_work(runtime: ServiceRuntime, claimed: Notification) -> UnitOfWork:
    return runtime.unit_of_work(
        Cause(event_id=claimed.cause_event_id, correlation_id=str(claimed.cause_event_id))
    )
