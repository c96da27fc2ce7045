"""The use cases on a batch's state and the automatic mode's rounds, in memory: what they
change and what they emit, without a database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from structlog.testing import capture_logs

from contracts.catalogue import topic_of
from services.fulfilment import service
from services.fulfilment.batch_state import BatchState, OrderFacts
from services.fulfilment.db import Shipment
from services.fulfilment.domain import AutomaticDelays, Line, ShipmentStatus, ShippingPolicy
from services.fulfilment.service import FulfilmentRules
from services.kit.batch import Context
from services.kit.emitted import EmittedEvents
from tests.fulfilment.harness import new_order_id, order_cancelled, stock_reserved

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
POLICY = ShippingPolicy(currency="EUR", unit_weight_grams=500)
NO_DELAYS = FulfilmentRules(POLICY, AutomaticDelays(0, 0, 0))
DELAYS = FulfilmentRules(POLICY, AutomaticDelays(pack_seconds=1, ship_seconds=1, deliver_seconds=2))
UNKNOWN = OrderFacts(None, None, None, None)


def recording_context() -> tuple[Context, EmittedEvents]:
    events = EmittedEvents(
        source="/test", topic_for=topic_of, tracer=trace.get_tracer(__name__), service=None
    )
    return Context(events, NOW), events


def emitted_types(events: EmittedEvents) -> list[str]:
    return [row.event_type for row in events.rows]


def shipment(
    *,
    status: ShipmentStatus = ShipmentStatus.CREATED,
    carrier: str = "laposte",
    next_step_at: datetime | None = NOW,
) -> Shipment:
    return Shipment(
        shipment_id="shp_0001",
        order_id="ord_0001",
        warehouse_id="wh-paris",
        warehouse_country="FR",
        reservation_id="res_0001",
        status=status,
        lines=(Line("SKU-A", 3),),
        shipping_speed="standard",
        carrier=carrier,
        shipping_method="colissimo",
        shipping_cost_minor=605,
        shipping_cost_currency="EUR",
        international=False,
        shipping_address=None if carrier == "pickup" else {"country": "FR"},
        customer_locale="fr",
        notes=None,
        tracking_number=None,
        packages=None,
        created_at=NOW - timedelta(minutes=1),
        picked_at=None,
        packed_at=None,
        shipped_at=None,
        delivered_at=None,
        cancelled_at=None,
        cancellation_reason=None,
        updated_at=NOW - timedelta(minutes=1),
        next_step_at=next_step_at,
    )


def advance(claimed: Sequence[Shipment], rules: FulfilmentRules) -> tuple[Shipment, list[str]]:
    context, events = recording_context()
    [advanced] = service.advance_due_shipments(claimed, rules, context)
    return advanced, emitted_types(events)


def test_without_delays_a_round_takes_a_shipment_from_created_to_delivered() -> None:
    delivered, emitted = advance([shipment()], NO_DELAYS)

    assert emitted == ["oms.ShipmentPacked.v1", "oms.Shipped.v1", "oms.Delivered.v1"]
    assert delivered.status is ShipmentStatus.DELIVERED
    assert delivered.picked_at == delivered.packed_at == delivered.shipped_at == NOW
    assert delivered.delivered_at == NOW
    assert delivered.tracking_number is not None and delivered.tracking_number.startswith("LP")
    assert delivered.next_step_at is None


def test_with_delays_a_round_takes_only_the_step_that_is_due() -> None:
    packed, emitted = advance([shipment()], DELAYS)

    assert emitted == ["oms.ShipmentPacked.v1"]
    assert packed.status is ShipmentStatus.PACKED
    assert packed.packages is not None and packed.packages[0].weight_grams == 1500
    assert packed.next_step_at == NOW + timedelta(seconds=1)


def test_a_round_leaves_a_shipment_not_yet_due_as_it_is() -> None:
    waiting = shipment(next_step_at=NOW + timedelta(seconds=1))

    assert advance([waiting], NO_DELAYS) == (waiting, [])


def test_a_round_hands_a_packed_pickup_over_and_counts_it_collected() -> None:
    collected, emitted = advance([shipment(status=ShipmentStatus.PACKED, carrier="pickup")], DELAYS)

    assert emitted == ["oms.Shipped.v1", "oms.Delivered.v1"]
    assert collected.status is ShipmentStatus.DELIVERED
    assert collected.shipped_at == collected.delivered_at == NOW


def test_a_round_stops_stepping_a_shipment_with_no_step_left() -> None:
    stale = shipment(status=ShipmentStatus.CANCELLED)

    stopped, emitted = advance([stale], NO_DELAYS)

    assert emitted == []
    assert stopped.next_step_at is None
    assert stopped.status is ShipmentStatus.CANCELLED


def test_a_second_reservation_from_a_warehouse_already_shipping_the_order_is_ignored() -> None:
    order_id = new_order_id()
    state = BatchState(facts={order_id: UNKNOWN})
    context, events = recording_context()

    service.create_shipments(
        state, stock_reserved(order_id, ("wh-paris", "SKU-A", 1)), context, DELAYS
    )
    with capture_logs() as logs:
        service.create_shipments(
            state,
            stock_reserved(order_id, ("wh-paris", "SKU-B", 1), ("wh-berlin", "SKU-C", 1)),
            context,
            DELAYS,
        )

    assert emitted_types(events) == ["oms.ShipmentCreated.v1", "oms.ShipmentCreated.v1"]
    assert [s.warehouse_id for s in state.order_shipments(order_id)] == ["wh-berlin", "wh-paris"]
    assert [s.lines for s in state.order_shipments(order_id)] == [
        (Line("SKU-C", 1),),
        (Line("SKU-A", 1),),
    ]
    assert [entry["warehouse_id"] for entry in logs if entry["log_level"] == "warning"] == [
        "wh-paris"
    ]


def test_a_cancellation_is_remembered_and_only_what_it_changed_is_marked_for_saving() -> None:
    order_id = new_order_id()
    state = BatchState(facts={order_id: UNKNOWN})
    context, _ = recording_context()
    cancelled = order_cancelled(order_id)

    service.cancel_order_shipments(state, cancelled, context)
    service.cancel_order_shipments(state, order_cancelled(order_id), context)

    assert state.facts_of(order_id).cancelled_at == cancelled.occurred_at
    assert state.changed_facts == {order_id}
    assert state.created_shipments == state.changed_shipments == set()
