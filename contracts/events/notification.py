"""What the notification service did about an event, on `oms.notification.v1`.

These are about a cause (the event that prompted the message), not about an order as
such: they travel under the cause's key (order id, or SKU for stock alerts), so they
stay in order with the events that caused them.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from contracts.base import Event, Identifier
from contracts.events.common import Note


class NotificationChannel(StrEnum):
    """How the message went out."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class NotificationAbout(Event):
    """What every notification outcome says of the message. Not an event on its own."""

    subject_key: str = Field(
        min_length=1,
        max_length=128,
        description="Key of the cause: the order id, or the SKU for stock alerts",
        examples=["ord_01HZX3"],
    )
    notification_id: Identifier = Field(description="Notification id", examples=["ntf_01HZX7"])
    cause_event_id: UUID = Field(description="event_id of the event that prompted it")
    cause_event_type: str = Field(
        pattern=r"^oms\.[A-Za-z0-9]+\.v[0-9]+$",
        description="CloudEvents type of the cause",
        examples=["oms.Shipped.v1"],
    )
    channel: NotificationChannel
    template: Identifier = Field(description="Template used", examples=["order_shipped"])

    def partition_key(self) -> str:
        return self.subject_key


class NotificationOutcome(NotificationAbout):
    """Fields of a message that went out, or tried to. Not an event on its own."""

    recipient: str = Field(
        min_length=1,
        max_length=512,
        description="E-mail address or webhook URL it went to",
        examples=["ada@example.com"],
    )
    attempts: int = Field(ge=1, le=1000, description="Delivery attempts made, this one included")


class NotificationSent(NotificationOutcome):
    """A message was handed to the mail server or the webhook answered 2xx."""


class NotificationFailed(NotificationOutcome):
    """A message could not be delivered and will not be retried."""

    error: Note = Field(description="Last delivery error", examples=["550 mailbox unavailable"])


class NotificationSkipReason(StrEnum):
    """Why a message was not sent at all: customer_has_no_email, the channel gave no
    e-mail address (a point-of-sale or draft order, say)."""

    CUSTOMER_HAS_NO_EMAIL = "customer_has_no_email"


class NotificationSkipped(NotificationAbout):
    """A message the event called for was not sent, for good, without an attempt."""

    reason: NotificationSkipReason


EVENTS = (NotificationSent, NotificationFailed, NotificationSkipped)
