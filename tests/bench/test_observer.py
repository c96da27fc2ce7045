"""What the observer reads of the system: the topics of the events that show an order's
steps, and of each record only its CloudEvents headers, as the services write them."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from bench.observer import (
    DELIVERED,
    NOTIFIED,
    PLACED,
    RESERVED,
    SHIPPED,
    FlowLedger,
    FlowObserver,
)
from bench.orders import make_order, submission_record
from contracts.events.channel import OrderSubmitted
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.inventory import StockReservationFailed, StockReserved
from contracts.events.notification import NotificationChannel, NotificationSent
from contracts.events.order import (
    OrderPlaced,
    OrderRejected,
    OrderRejectionCode,
    OrderRejectionReason,
)
from contracts.wire import HEADER_CORRELATION_ID, HEADER_SUBJECT, HEADER_TYPE, Headers, encode
from services.kit.topics import TopicNames

ORDER_ID = "ord_1"
SKUS = tuple(f"BENCH-run1-{number}" for number in range(8))
AT = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def _observer() -> tuple[FlowObserver, FlowLedger, OrderSubmitted]:
    ledger = FlowLedger()
    observer = FlowObserver("127.0.0.1:1", TopicNames("ns"), ledger)
    submitted = make_order("run1", "main", 0, SKUS)
    ledger.submitted(submitted.external_order_id, 100.0)
    return observer, ledger, submitted


def _correlation_of(headers: Headers) -> str:
    return dict(headers)[HEADER_CORRELATION_ID].decode()


def _placed_headers(submitted: OrderSubmitted) -> Headers:
    """OrderPlaced as the order service records it: under the submission's correlation id."""
    fields = submitted.model_dump(exclude={"event_id", "occurred_at", "submitted_at"})
    placed = OrderPlaced.model_validate(
        {**fields, "order_id": ORDER_ID, "placed_at": submitted.submitted_at}
    )
    correlation = _correlation_of(submission_record(submitted).headers)
    return encode(
        placed, source="/oms/order", correlation_id=correlation, causation_id=submitted.event_id
    ).headers


def _delivered() -> Delivered:
    return Delivered(
        order_id=ORDER_ID, shipment_id="shp_1", tracking_number="1Z999", delivered_at=AT
    )


def _notice_headers(cause_id: UUID, cause_type: str) -> Headers:
    """NotificationSent as the notification service records it: caused by the event it
    tells the customer about."""
    notice = NotificationSent(
        subject_key=ORDER_ID,
        notification_id="ntf_1",
        cause_event_id=cause_id,
        cause_event_type=cause_type,
        channel=NotificationChannel.EMAIL,
        template="order_delivered",
        recipient="ada@example.com",
        attempts=1,
    )
    return encode(
        notice, source="/oms/notification", correlation_id=str(cause_id), causation_id=cause_id
    ).headers


def _step_headers(event_type: str) -> Headers:
    return [(HEADER_TYPE, event_type.encode()), (HEADER_SUBJECT, ORDER_ID.encode())]


def test_reads_only_the_topics_of_the_events_that_show_a_step() -> None:
    observer, _, _ = _observer()
    assert observer.topics == (
        "ns.oms.fulfilment.v1",
        "ns.oms.inventory.v1",
        "ns.oms.notification.v1",
        "ns.oms.order.v1",
    )


def test_follows_an_order_from_placed_to_its_delivery_notice_by_headers_alone() -> None:
    observer, ledger, submitted = _observer()
    delivered = _delivered()
    observer.observe(_placed_headers(submitted), 100_100)
    observer.observe(_step_headers(StockReserved.event_type()), 100_200)
    observer.observe(_step_headers(Shipped.event_type()), 100_300)
    observer.observe(
        encode(delivered, source="/oms/fulfilment", correlation_id="x").headers, 100_400
    )
    assert ledger.phase("main").completed == 0
    observer.observe(_notice_headers(delivered.event_id, Delivered.event_type()), 100_500)

    assert ledger.phase("main").completed == 1
    assert ledger.order_ids[submitted.external_order_id] == ORDER_ID
    (flow,) = ledger.flows("main")
    assert flow[PLACED] == 100.1
    assert flow[RESERVED] == 100.2
    assert flow[SHIPPED] == 100.3
    assert flow[DELIVERED] == 100.4
    assert flow[NOTIFIED] == 100.5


def test_an_e_mail_about_another_step_is_no_delivery_notice() -> None:
    observer, ledger, submitted = _observer()
    delivered = _delivered()
    observer.observe(_placed_headers(submitted), 100_100)
    observer.observe(
        encode(delivered, source="/oms/fulfilment", correlation_id="x").headers, 100_400
    )
    shipped_id = UUID("0190f1c2-7d3e-7a4b-9c1d-2e3f4a5b6c7d")
    observer.observe(_notice_headers(shipped_id, Shipped.event_type()), 100_500)
    assert ledger.phase("main").completed == 0
    assert NOTIFIED not in ledger.flows("main")[0]


def test_a_record_without_the_headers_it_needs_shows_nothing() -> None:
    observer, ledger, submitted = _observer()
    placed = [
        (name, value) for name, value in _placed_headers(submitted) if name != HEADER_CORRELATION_ID
    ]
    observer.observe(placed, 100_100)
    observer.observe([(HEADER_SUBJECT, ORDER_ID.encode())], 100_200)
    observer.observe([(HEADER_TYPE, StockReserved.event_type().encode())], 100_200)
    assert ledger.order_ids == {}
    assert ledger.steps == {}


def test_an_order_whose_reservation_failed_is_finished_without_completing() -> None:
    observer, ledger, submitted = _observer()
    observer.observe(_placed_headers(submitted), 100_100)
    observer.observe(_step_headers(StockReservationFailed.event_type()), 100_200)
    counts = ledger.phase("main")
    assert (counts.completed, counts.failed) == (0, 1)
    assert ledger.finished("main")


def test_a_rejected_order_is_matched_to_its_submission_by_correlation_id() -> None:
    observer, ledger, submitted = _observer()
    rejected = OrderRejected(
        order_id=ORDER_ID,
        channel=submitted.channel,
        external_order_id=submitted.external_order_id,
        reasons=(
            OrderRejectionReason(
                code=OrderRejectionCode.UNKNOWN_SKU, field="lines", message="no such SKU"
            ),
        ),
    )
    correlation = _correlation_of(submission_record(submitted).headers)
    observer.observe(encode(rejected, source="/oms/order", correlation_id=correlation).headers, 1)
    counts = ledger.phase("main")
    assert (counts.completed, counts.failed) == (0, 1)
    assert ledger.finished("main")
