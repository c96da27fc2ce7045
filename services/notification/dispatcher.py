"""The dispatcher: a background job that delivers recorded notifications.

Each round claims the due notifications and reads what they need (the customers'
contacts, the webhooks' subscriptions) in one short transaction (see `db.claim_due`), delivers
them concurrently with no transaction open (e-mails over a few reused SMTP connections),
and records every outcome of the round in one unit of work: sent (emitting
NotificationSent), retried later with exponential backoff, failed for good after the
last attempt (emitting NotificationFailed), or skipped without an attempt (an e-mail to a
customer whose order came without an address).

Delivery is at least once. Outcomes that cannot be recorded because the database is
briefly away are retried for most of the claim's lease, so an outage does not repeat a
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
from services.notification import service
from services.notification.delivery import DeliveryRefused, SmtpMailer, post_webhook
from services.notification.domain import (
    AttemptOutcome,
    Channel,
    Notification,
    RetryPolicy,
    SkipReason,
)
from services.notification.mail import OutgoingMail
from services.notification.templates import TemplateCatalogue

log = get_logger(__name__)


@dataclass(frozen=True)
class DispatchSettings:
    mailer: SmtpMailer
    retry: RetryPolicy
    internal_locale: str
    smtp_connections: int
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
        """One round: claims due notifications, attempts each, records the outcomes;
        returns how many were claimed."""
        # Read in the claim's transaction: a failed read leaves nothing claimed behind.
        async with runtime.unit_of_work() as uow:
            claimed = await service.claim_due(
                uow,
                now=datetime.now(UTC),
                limit=self._settings.batch_size,
                lease=self._settings.claim_lease,
            )
            context = await service.delivery_context(uow.connection, claimed)
        if not claimed:
            return 0
        emails = [item for item in claimed if item.channel is Channel.EMAIL]
        webhooks = [item for item in claimed if item.channel is not Channel.EMAIL]
        email_outcomes, webhook_outcomes = await asyncio.gather(
            self._send_emails(emails, context),
            asyncio.gather(*(self._call_webhook(client, item, context) for item in webhooks)),
        )
        await self.record_outcomes(runtime, [*email_outcomes, *webhook_outcomes])
        return len(claimed)

    async def _send_emails(
        self, claimed: list[Notification], context: service.DeliveryContext
    ) -> list[AttemptOutcome]:
        outcomes: list[AttemptOutcome] = []
        composed: list[tuple[Notification, OutgoingMail]] = []
        mailer = self._settings.mailer
        for notification in claimed:
            skipped = service.skip_reason(notification, context)
            if skipped is not None:
                outcomes.append(_skipped(notification, skipped))
                continue
            try:
                if notification.recipient is None:
                    raise DeliveryRefused("the recipient is not known")
                rendered = service.compose_email(
                    notification, context, self._catalogue, self._settings.internal_locale
                )
                message = mailer.message(
                    notification.notification_id, notification.recipient, rendered
                )
            except Exception as error:
                outcomes.append(_failed(notification, error))
                continue
            composed.append((notification, message))
        results = await mailer.send_all(
            [message for _, message in composed], connections=self._settings.smtp_connections
        )
        for (notification, _), refusal in zip(composed, results, strict=True):
            if refusal is None:
                outcomes.append(_delivered(notification))
            else:
                outcomes.append(_failed(notification, refusal))
        return outcomes

    async def _call_webhook(
        self,
        client: httpx.AsyncClient,
        claimed: Notification,
        context: service.DeliveryContext,
    ) -> AttemptOutcome:
        subscription = (
            context.subscriptions.get(claimed.subscription_id)
            if claimed.subscription_id is not None
            else None
        )
        if subscription is None:
            gone = f"webhook subscription {claimed.subscription_id} was deleted"
            return _failed(claimed, gone, final=True)
        try:
            if claimed.recipient is None:
                raise DeliveryRefused("the recipient is not known")
            await post_webhook(
                client,
                url=claimed.recipient,
                secret=subscription.secret,
                event_type=claimed.cause_event_type,
                event_id=claimed.cause_event_id,
                body=claimed.payload.encode(),
            )
        except Exception as error:
            return _failed(claimed, error)
        return _delivered(claimed)

    async def record_outcomes(
        self, runtime: ServiceRuntime, outcomes: list[AttemptOutcome]
    ) -> None:
        """Records the round's outcomes in one transaction. When that fails for a reason
        other than the database being away, each is recorded on its own, so one outcome
        that cannot be recorded does not hold back the others."""
        try:
            await self._record_together(runtime, outcomes)
            return
        except Exception as error:
            if is_transient(error) or len(outcomes) == 1:
                _not_recorded(outcomes, error)
                return
            log.warning(
                "recording the round's outcomes failed; recording them one by one",
                outcomes=len(outcomes),
                error=repr(error),
            )
        for outcome in outcomes:
            try:
                await self._record_together(runtime, [outcome])
            except Exception as error:
                _not_recorded([outcome], error)

    async def _record_together(
        self, runtime: ServiceRuntime, outcomes: list[AttemptOutcome]
    ) -> None:
        async for attempt in self._recording_retries():
            with attempt:
                async with runtime.unit_of_work() as uow:
                    await service.record_outcomes(
                        uow, outcomes, policy=self._settings.retry, now=datetime.now(UTC)
                    )

    def _recording_retries(self) -> AsyncRetrying:
        """Retries of recording outcomes while the database is away, stopping well
        inside the lease: past it the notification may be claimed and sent again."""
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            stop=stop_after_delay(self._settings.claim_lease.total_seconds() * 0.75),
            reraise=True,
        )


# A line per message at DEBUG only: at INFO it would cost a good share of writing the
# message, and NotificationSent / NotificationSkipped say it already.
def _delivered(claimed: Notification) -> AttemptOutcome:
    log.debug(
        "notification sent",
        notification_id=claimed.notification_id,
        channel=claimed.channel.value,
    )
    return AttemptOutcome(claimed)


def _skipped(claimed: Notification, reason: SkipReason) -> AttemptOutcome:
    log.debug("notification skipped", notification_id=claimed.notification_id, reason=reason.value)
    return AttemptOutcome(claimed, skipped=reason)


def _failed(
    claimed: Notification, error: Exception | str, *, final: bool = False
) -> AttemptOutcome:
    description = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    log.warning(
        "delivery attempt failed",
        notification_id=claimed.notification_id,
        attempt=claimed.attempts,
        error=description,
    )
    return AttemptOutcome(claimed, error=description, final=final)


def _not_recorded(outcomes: list[AttemptOutcome], error: Exception) -> None:
    # The claim's lease brings each notification back for another attempt.
    for outcome in outcomes:
        log.warning(
            "delivery outcome not recorded",
            notification_id=outcome.notification.notification_id,
            error=repr(error),
        )
