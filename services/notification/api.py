"""HTTP: webhook subscriptions (commands) and the notifications sent (queries)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, HttpUrl, UrlConstraints, field_validator

from contracts.base import Identifier
from services.kit.runtime import ServiceRuntime
from services.kit.text import without_nul
from services.notification import service
from services.notification.domain import (
    Audience,
    Channel,
    Notification,
    NotificationStatus,
    SkipReason,
    WebhookSubscription,
)
from services.notification.handlers import subscribable_event_types
from services.notification.subscribed_types import SubscribedTypes

SUBSCRIBABLE = subscribable_event_types()
MAX_URL_LENGTH = 512

# Ids in the path and the subject filter have the shape of the ids the service hands out
# and of order ids: anything else is a malformed request (422), never a database lookup.
SubscriptionPath = Annotated[Identifier, Path(max_length=64)]
NotificationPath = Annotated[Identifier, Path(max_length=64)]


class SubscriptionRequest(BaseModel):
    url: Annotated[HttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH)] = Field(
        description="Where to POST the events (at most 512 characters, percent-encoded)",
        examples=["https://erp.example.com/oms-hook"],
    )
    secret: str = Field(
        min_length=16,
        max_length=256,
        description="Shared secret: the X-OMS-Signature header is HMAC-SHA256 of the body",
    )
    event_types: list[str] = Field(
        min_length=1,
        max_length=100,
        description="CloudEvents types to receive",
        examples=[["oms.Shipped.v1", "oms.Delivered.v1"]],
    )

    @field_validator("secret")
    @classmethod
    def _storable(cls, secret: str) -> str:
        return without_nul(secret)

    @field_validator("url")
    @classmethod
    def _fits_once_normalised(cls, url: HttpUrl) -> HttpUrl:
        # Normalising percent-encodes the path and punycodes the host, so a URL within the
        # limit as typed can outgrow the stored column (512) afterwards.
        if len(str(url)) > MAX_URL_LENGTH:
            raise ValueError(
                f"URL is longer than {MAX_URL_LENGTH} characters once normalised "
                "(percent-encoded path, punycode host)"
            )
        return url

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, event_types: list[str]) -> list[str]:
        unknown = sorted(set(event_types) - SUBSCRIBABLE)
        if unknown:
            raise ValueError(f"not event types this service consumes: {', '.join(unknown)}")
        return sorted(set(event_types))


class SubscriptionView(BaseModel):
    subscription_id: str
    url: str
    event_types: list[str]
    created_at: datetime

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> SubscriptionView:
        return cls(
            subscription_id=subscription.subscription_id,
            url=subscription.url,
            event_types=list(subscription.event_types),
            created_at=subscription.created_at,
        )


class NotFound(BaseModel):
    detail: str


class Refusal(BaseModel):
    code: str
    detail: str
    subscription_id: str


class NotificationView(BaseModel):
    notification_id: str
    cause_event_id: UUID
    cause_event_type: str
    subject_key: str
    channel: Channel
    audience: Audience
    recipient: str | None = Field(
        description="None while the customer's address is unknown, or when they have none"
    )
    template: str
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    skip_reason: SkipReason | None = Field(description="Why it was not sent, when skipped")
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, notification: Notification) -> NotificationView:
        return cls(
            notification_id=notification.notification_id,
            cause_event_id=notification.cause_event_id,
            cause_event_type=notification.cause_event_type,
            subject_key=notification.subject_key,
            channel=notification.channel,
            audience=notification.audience,
            recipient=notification.recipient,
            template=notification.template,
            status=notification.status,
            attempts=notification.attempts,
            next_attempt_at=notification.next_attempt_at,
            last_error=notification.last_error,
            skip_reason=notification.skip_reason,
            created_at=notification.created_at,
            updated_at=notification.updated_at,
            sent_at=notification.sent_at,
        )


def create_router(runtime: ServiceRuntime, subscribed: SubscribedTypes) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/webhook-subscriptions",
        status_code=status.HTTP_201_CREATED,
        response_model=SubscriptionView,
        responses={409: {"model": Refusal, "description": "The URL is subscribed already"}},
        tags=["webhooks"],
    )
    async def subscribe(request: SubscriptionRequest) -> SubscriptionView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.subscribe_webhook(
                uow, url=str(request.url), secret=request.secret, event_types=request.event_types
            )
        if isinstance(outcome, service.AlreadySubscribed):
            refusal = Refusal(
                code="url_already_subscribed",
                detail="this URL has a subscription; delete it to subscribe it anew",
                subscription_id=outcome.subscription.subscription_id,
            )
            return JSONResponse(status_code=status.HTTP_409_CONFLICT, content=refusal.model_dump())
        # Committed: this replica's consumers read the subscribed types from now on.
        subscribed.add(outcome.event_types)
        return SubscriptionView.of(outcome)

    @router.get("/webhook-subscriptions", response_model=list[SubscriptionView], tags=["webhooks"])
    async def list_subscriptions() -> list[SubscriptionView]:
        async with runtime.engine.connect() as connection:
            found = await service.list_subscriptions(connection)
        return [SubscriptionView.of(subscription) for subscription in found]

    @router.delete(
        "/webhook-subscriptions/{subscription_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={404: {"model": NotFound, "description": "No such subscription"}},
        tags=["webhooks"],
    )
    async def unsubscribe(subscription_id: SubscriptionPath) -> Response:
        async with runtime.unit_of_work() as uow:
            removed = await service.unsubscribe_webhook(uow, subscription_id)
        if not removed:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such webhook subscription")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/notifications", response_model=list[NotificationView], tags=["notifications"])
    async def find_notifications(
        subject_key: Annotated[Identifier | None, Query()] = None,
        notification_status: Annotated[NotificationStatus | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[NotificationView]:
        async with runtime.engine.connect() as connection:
            found = await service.find_notifications(
                connection, subject_key=subject_key, status=notification_status, limit=limit
            )
        return [NotificationView.of(notification) for notification in found]

    @router.get(
        "/notifications/{notification_id}",
        response_model=NotificationView,
        responses={404: {"model": NotFound, "description": "No such notification"}},
        tags=["notifications"],
    )
    async def get_notification(notification_id: NotificationPath) -> NotificationView:
        async with runtime.engine.connect() as connection:
            found = await service.notification(connection, notification_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such notification")
        return NotificationView.of(found)

    return router
