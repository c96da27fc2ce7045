"""The timeline knows every event the order service sees, and the routes send each one
(but the SKU-only LowStockDetected) to a handler: pure, no I/O."""

from __future__ import annotations

import uuid

from contracts.base import Event, Money
from contracts.catalogue import TOPICS
from contracts.events.common import Address
from contracts.events.inventory import LowStockDetected
from contracts.events.notification import NotificationChannel, NotificationFailed
from contracts.events.order import OrderShippingAddressChanged
from contracts.events.returns import RefundIssued
from services.order import handlers, timeline
from services.order.submissions import IntakePolicy


def seen_by_the_order_service() -> set[type[Event]]:
    return {
        event
        for topic in TOPICS
        if "order" in topic.consumers or topic.producer == "order"
        for event in topic.events
    }


def consumed_by_the_order_service() -> set[type[Event]]:
    return {event for topic in TOPICS if "order" in topic.consumers for event in topic.events}


def test_every_event_about_orders_has_a_timeline_description() -> None:
    described = set(timeline.describe.registry) - {object, Event}
    assert described == seen_by_the_order_service() - {LowStockDetected}


def test_every_consumed_event_about_orders_is_routed() -> None:
    router = handlers.router(IntakePolicy(deliverable_countries=frozenset()))
    routed = {
        event for topic in TOPICS for event in topic.events if router.applies(event.event_type())
    }
    assert routed == consumed_by_the_order_service() - {LowStockDetected}


def test_the_source_is_read_off_the_topic() -> None:
    assert timeline.source_of(RefundIssued) == "returns"
    assert timeline.source_of(OrderShippingAddressChanged) == "order"


def test_amounts_are_shown_in_major_units_of_their_currency() -> None:
    refund = RefundIssued(
        order_id="ord_1",
        return_id="rma_1",
        refund_id="re_1",
        amount=Money(amount_minor=1999, currency="EUR"),
        lines_amount=Money(amount_minor=1999, currency="EUR"),
        shipping_refunded=Money(amount_minor=0, currency="EUR"),
        policy="p",
    )
    yen = refund.model_copy(update={"amount": Money(amount_minor=1999, currency="JPY")})
    assert timeline.entry(refund).summary == "Refund re_1 of 19.99 EUR issued for return rma_1"
    assert "1999 JPY" in timeline.entry(yen).summary


def test_free_text_is_stored_without_nul_characters_and_summaries_are_bounded() -> None:
    failed = NotificationFailed(
        subject_key="ord_1",
        notification_id="ntf_1",
        cause_event_id=uuid.uuid4(),
        cause_event_type="oms.Shipped.v1",
        channel=NotificationChannel.EMAIL,
        recipient="x" * 500,
        template="order_shipped",
        attempts=3,
        error="bad\x00news",
    )
    entry = timeline.entry(failed)
    assert "\x00" not in entry.summary and entry.details["error"] == "bad\ufffdnews"
    assert len(entry.summary) == timeline.MAX_SUMMARY_CHARS


def test_an_address_change_shows_where_without_the_recipient() -> None:
    changed = OrderShippingAddressChanged(
        order_id="ord_1",
        shipping_address=Address(
            name="Ada", line1="1 rue X", city="Lyon", postal_code="69006", country="FR"
        ),
        changed_by="agent:jdoe",
    )
    entry = timeline.entry(changed)
    assert entry.summary == "Shipping address changed by agent:jdoe to Lyon, FR"
    assert "name" not in entry.details
