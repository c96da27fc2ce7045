"""The topic catalogue: every topic, its key, who produces it, who consumes it, and which
event types travel on it. Infrastructure scripts create topics from this list."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from contracts.base import Event
from contracts.events import channel, fulfilment, inventory, notification, order, returns


class UnknownEventType(LookupError):
    pass


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    producer: str
    consumers: tuple[str, ...]
    events: tuple[type[Event], ...]
    description: str


TOPICS: tuple[Topic, ...] = (
    Topic(
        name="oms.channel.orders.v1",
        key="`channel:external_order_id` of the submitted order",
        producer="sales-channel adapters",
        consumers=("order",),
        events=channel.EVENTS,
        description="Orders submitted by sales channels; the system's inbound contract.",
    ),
    Topic(
        name="oms.order.v1",
        key="order id",
        producer="order",
        consumers=("inventory", "fulfilment", "returns", "notification"),
        events=order.EVENTS,
        description="Order lifecycle facts.",
    ),
    Topic(
        name="oms.inventory.v1",
        key="order id (sku for LowStockDetected)",
        producer="inventory",
        consumers=("order", "fulfilment", "notification"),
        events=inventory.EVENTS,
        description="Stock reservations, commits, releases and restocks.",
    ),
    Topic(
        name="oms.fulfilment.v1",
        key="order id",
        producer="fulfilment",
        consumers=("order", "inventory", "returns", "notification"),
        events=fulfilment.EVENTS,
        description="Shipments from creation to delivery.",
    ),
    Topic(
        name="oms.returns.v1",
        key="order id",
        producer="returns",
        consumers=("order", "inventory", "notification"),
        events=returns.EVENTS,
        description="Returns (RMAs), inspections and refunds.",
    ),
    Topic(
        name="oms.notification.v1",
        key="order id (sku for stock alerts)",
        producer="notification",
        consumers=("order",),
        events=notification.EVENTS,
        description="Messages sent to customers and teams, and failures to send them.",
    ),
)

CONSUMER_GROUPS: tuple[str, ...] = ("order", "inventory", "fulfilment", "returns", "notification")

SPANS_TOPIC = "oms.telemetry.spans.v1"
"""Finished OpenTelemetry spans of every service, as JSON keyed by trace id: telemetry for
the operations view, not contract events (no event model, no schema)."""
TELEMETRY_TOPICS: tuple[str, ...] = (SPANS_TOPIC,)

_BY_TYPE: dict[str, type[Event]] = {
    event.event_type(): event for topic in TOPICS for event in topic.events
}
_TOPIC_OF: dict[type[Event], str] = {
    event: topic.name for topic in TOPICS for event in topic.events
}


def event_class_for(event_type: str) -> type[Event]:
    try:
        return _BY_TYPE[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


def events_on(topic_name: str) -> tuple[type[Event], ...] | None:
    """The event types that travel on a catalogue topic; None for a topic not in it."""
    for topic in TOPICS:
        if topic.name == topic_name:
            return topic.events
    return None


def topic_of(event_class: type[Event]) -> str:
    return _TOPIC_OF[event_class]


def topics_consumed_by(service: str) -> tuple[str, ...]:
    return tuple(topic.name for topic in TOPICS if service in topic.consumers)


def dead_letter_topic(consumer_group: str) -> str:
    """One dead-letter topic per consumer group, so each team replays only its own."""
    return f"oms.deadletter.{consumer_group}.v1"


def all_topic_names() -> tuple[str, ...]:
    return (
        tuple(topic.name for topic in TOPICS)
        + tuple(dead_letter_topic(group) for group in CONSUMER_GROUPS)
        + TELEMETRY_TOPICS
    )


if __name__ == "__main__":  # `python -m contracts.catalogue`: the topic names, one a line
    sys.stdout.write("\n".join(all_topic_names()) + "\n")
