"""Wires the notification service: settings, runtime, consumers, dispatcher and HTTP routes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field

from services.kit.runtime import ServiceDefinition, ServiceRuntime, create_http_app
from services.kit.settings import ServiceSettings, database_url_field
from services.notification.api import create_router
from services.notification.delivery import SmtpMailer
from services.notification.dispatcher import Dispatcher, DispatchSettings
from services.notification.domain import RetryPolicy
from services.notification.handlers import router
from services.notification.service import InternalRecipients
from services.notification.subscribed_types import SubscribedTypes
from services.notification.templates import TemplateCatalogue

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


class NotificationSettings(ServiceSettings):
    service_name: str = "notification"
    http_port: int = 8005
    database_url: str = database_url_field("notification")

    notification_smtp_host: str = "127.0.0.1"
    notification_smtp_port: int = Field(default=1025, ge=1, le=65535)
    notification_smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    notification_smtp_connections: int = Field(
        default=4,
        ge=1,
        le=100,
        description="SMTP connections a dispatch round opens at most; each carries several "
        "messages in turn",
    )
    notification_from_address: str = "notifications@example.com"
    notification_purchasing_email: str = "purchasing@example.com"
    notification_operations_email: str = "operations@example.com"
    notification_internal_locale: str = Field(
        default="en", description="Language of the alerts sent to purchasing and operations"
    )
    notification_max_attempts: int = Field(default=5, ge=1, le=1000)
    notification_retry_base_seconds: float = Field(
        default=1.0, gt=0, description="Wait after the first failed attempt; doubles after each"
    )
    notification_webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    notification_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often the dispatcher looks for due notifications"
    )
    notification_dispatch_batch_size: int = Field(default=20, ge=1, le=1000)
    notification_claim_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a delivery attempt owns its notification; longer than any "
        "SMTP or webhook timeout, or a slow attempt may be repeated by another replica",
    )
    notification_subscription_refresh_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often each replica reads again which event types webhooks "
        "subscribe to: a subscription made on another replica covers the events consumed "
        "from at most this long after it was made",
    )


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    dispatcher = Dispatcher(
        DispatchSettings(
            mailer=SmtpMailer(
                host=settings.notification_smtp_host,
                port=settings.notification_smtp_port,
                from_address=settings.notification_from_address,
                timeout_seconds=settings.notification_smtp_timeout_seconds,
            ),
            retry=RetryPolicy(
                max_attempts=settings.notification_max_attempts,
                base_delay=timedelta(seconds=settings.notification_retry_base_seconds),
            ),
            internal_locale=settings.notification_internal_locale,
            smtp_connections=settings.notification_smtp_connections,
            webhook_timeout_seconds=settings.notification_webhook_timeout_seconds,
            poll_seconds=settings.notification_poll_seconds,
            batch_size=settings.notification_dispatch_batch_size,
            claim_lease=timedelta(seconds=settings.notification_claim_lease_seconds),
        ),
        TemplateCatalogue(),
    )
    recipients = InternalRecipients(
        purchasing=settings.notification_purchasing_email,
        operations=settings.notification_operations_email,
    )
    subscribed = SubscribedTypes(refresh_seconds=settings.notification_subscription_refresh_seconds)
    runtime = ServiceRuntime(
        settings,
        ServiceDefinition(
            name="notification",
            migrations=MIGRATIONS,
            router=router(recipients, subscribed),
            background=(dispatcher.run, subscribed.follow),
        ),
    )
    return create_http_app(runtime, [create_router(runtime, subscribed)])
