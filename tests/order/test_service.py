"""The order service in-process against the real Kafka and PostgreSQL: what it emits
for what it consumes, and its HTTP API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from contracts.base import Money
from contracts.events.channel import OrderSubmitted
from contracts.events.fulfilment import (
    ShipmentCancellationReason,
    ShipmentCancelled,
)
from contracts.events.inventory import Shortage, StockReservationFailed, StockReserved
from contracts.events.notification import NotificationChannel, NotificationSent
from contracts.events.order import (
    CancellationReason,
    FinalStatus,
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderRejectionCode,
    OrderShippingAddressChanged,
)
from contracts.events.returns import (
    RefundIssued,
    Returned,
    ReturnReasonCode,
    ReturnRejected,
    ReturnRejectionCode,
    ReturnRejectionReason,
    ReturnRequested,
    ReturnRequestLine,
)
from contracts.wire import encode
from services.order import db
from tests.kafka_tools import eventually, publish
from tests.order.scene import (
    NEW_ADDRESS,
    Scene,
    about,
    delivered,
    eur,
    new_key,
    order_fields,
    place,
    shipment_created,
    shipped,
    sku_quantities,
    stock_reserved,
    submitted,
)
from tests.schema import differences_from_the_code

pytestmark = pytest.mark.integration

# --- intake from the channel topic ---------------------------------------------------------------


async def test_a_valid_submission_is_placed_on_the_order_topic(scene: Scene) -> None:
    submission = submitted(order_fields())
    await scene.publish(submission)

    [placed] = await scene.wait_for(
        OrderPlaced, lambda e: e.external_order_id == submission.external_order_id
    )

    assert placed.order_id.startswith("ord_")
    # Every derived amount is filled in: after discounts, total discounts and tax (none).
    assert placed.lines == tuple(
        line.model_copy(update={"discounted_total": line.line_total}) for line in submission.lines
    )
    assert placed.total == submission.total
    assert placed.total_discounts == placed.total_tax == Money(amount_minor=0, currency="EUR")
    assert placed.placed_at == submission.submitted_at
    view = (await scene.client.get(f"/orders/{placed.order_id}")).json()
    assert view["status"] == "placed"
    assert view["status_history"][0] | {"at": None} == {
        "from_status": None,
        "to_status": "placed",
        "at": None,
        "cause_event_id": str(submission.event_id),
        "command": None,
        "actor": "channel",
    }


async def test_a_duplicate_submission_places_the_order_once(scene: Scene) -> None:
    fields = order_fields()
    first = submitted(fields)
    await scene.publish(first)
    [placed] = await scene.wait_for(
        OrderPlaced, lambda e: e.external_order_id == first.external_order_id
    )

    again = submitted(fields)
    await scene.publish(again)
    await eventually(lambda: scene.consumed(again))

    events = await scene.order_events(
        lambda e: getattr(e, "external_order_id", None) == first.external_order_id
    )
    assert events == [placed]
    listed = (
        await scene.client.get("/orders", params={"external_order_id": first.external_order_id})
    ).json()
    assert [order["order_id"] for order in listed["items"]] == [placed.order_id]


def discounted_taxed_fields() -> dict[str, Any]:
    """Prices include 20 % VAT; SPRING10 takes 10 % off both lines; shipping 4.90 with a
    1.00 shipping discount. 2 x 10.00 + 1 x 10.00 = 30.00 - 3.00 - 1.00 + 4.90 = 30.90."""
    fields = order_fields()
    spring = {"discount_id": "0", "kind": "code", "title": "SPRING10"}

    def eur(amount: int) -> dict[str, Any]:
        return {"amount_minor": amount, "currency": "EUR"}

    def vat(amount: int) -> dict[str, Any]:
        return {"title": "TVA", "rate": "0.2", "amount": eur(amount)}

    fields["lines"][0] |= {
        "title": "Oak chair",
        "discount_allocations": [{"amount": eur(200), **spring}],
        "tax_lines": [vat(300)],
    }
    fields["lines"][1] |= {
        "discount_allocations": [{"amount": eur(100), **spring}],
        "tax_lines": [vat(150)],
    }
    return fields | {
        "discounts": [
            {
                **spring,
                "code": "SPRING10",
                "value_type": "percentage",
                "percentage": "10",
                "target": "order",
            },
            {
                "discount_id": "1",
                "kind": "automatic",
                "title": "Shipping -1",
                "value_type": "fixed_amount",
                "amount": eur(100),
                "target": "shipping",
            },
        ],
        "shipping_lines": [
            {
                "title": "Colissimo",
                "price": eur(490),
                "discount_allocations": [
                    {
                        "amount": eur(100),
                        "discount_id": "1",
                        "kind": "automatic",
                        "title": "Shipping -1",
                    }
                ],
                "tax_lines": [vat(65)],
            }
        ],
        "taxes_included": True,
        "total_discounts": eur(400),
        "total_tax": eur(515),
        "total": eur(3000 - 400 + 490),
        "payment": {"financial_status": "paid", "gateways": ["shopify_payments"]},
        "notes": "Leave at the door",
    }


async def test_a_discounted_taxed_order_is_placed_with_every_amount_an_erp_posts(
    scene: Scene,
) -> None:
    submission = submitted(discounted_taxed_fields())
    await scene.publish(submission)

    [placed] = await scene.wait_for(
        OrderPlaced, lambda e: e.external_order_id == submission.external_order_id
    )

    assert placed.total.amount_minor == 3090
    assert [line.discounted_total for line in placed.lines] == [
        Money(amount_minor=1800, currency="EUR"),
        Money(amount_minor=900, currency="EUR"),
    ]
    assert placed.shipping_lines[0].discounted_price == Money(amount_minor=390, currency="EUR")
    assert placed.discounts == submission.discounts and placed.taxes_included
    assert placed.total_discounts == Money(amount_minor=400, currency="EUR")
    assert placed.total_tax == Money(amount_minor=515, currency="EUR")
    assert placed.notes == "Leave at the door" and placed.payment == submission.payment
    view = (await scene.client.get(f"/orders/{placed.order_id}")).json()
    assert view["total_discounts"]["amount_minor"] == 400
    assert view["total_tax"]["amount_minor"] == 515 and view["taxes_included"] is True
    assert view["discounts"][0]["code"] == "SPRING10"
    assert view["shipping_lines"][0]["discounted_price"]["amount_minor"] == 390
    assert view["lines"][0]["title"] == "Oak chair"
    assert view["lines"][0]["discounted_total"]["amount_minor"] == 1800
    assert view["lines"][0]["tax_lines"][0]["amount"]["amount_minor"] == 300
    assert view["payment"]["financial_status"] == "paid"


async def test_a_discounted_taxed_order_is_taken_over_http_too(scene: Scene) -> None:
    body = {**discounted_taxed_fields(), "channel": "b2b", "placed_by": "rep:jdoe"}

    response = await scene.client.post("/orders", json=body, headers=new_key())

    assert response.status_code == 201, response.text
    view = response.json()
    assert view["total"]["amount_minor"] == 3090
    assert view["total_discounts"]["amount_minor"] == 400
    assert view["lines"][1]["discount_allocations"][0]["title"] == "SPRING10"


async def test_an_order_whose_amounts_do_not_add_up_is_rejected_naming_both_numbers(
    scene: Scene,
) -> None:
    fields = discounted_taxed_fields()
    fields["taxes_included"] = False  # the tax (5.15) now comes on top: 36.05 expected
    submission = submitted(fields)
    await scene.publish(submission)

    [rejected] = await scene.wait_for(
        OrderRejected, lambda e: e.external_order_id == submission.external_order_id
    )

    [reason] = rejected.reasons
    assert (reason.code, reason.field) == (OrderRejectionCode.TOTAL_MISMATCH, "total")
    assert reason.message.startswith("total is 3090, but") and reason.message.endswith("is 3605")


async def test_orders_without_postcode_e_mail_or_shipping_address_are_placed(
    scene: Scene,
) -> None:
    hong_kong = order_fields()
    hong_kong["shipping_address"] = {
        "name": "Chan Tai Man",
        "line1": "Flat 12A, 8 Nathan Road",
        "city": "Tsim Sha Tsui",
        "region": "Kowloon",
        "country": "HK",
    }
    point_of_sale = order_fields()
    point_of_sale["customer"] = {"locale": "en"}
    del point_of_sale["shipping_address"]
    submissions = [submitted(hong_kong), submitted(point_of_sale)]
    for submission in submissions:
        await scene.publish(submission)

    for submission in submissions:
        [placed] = await scene.wait_for(OrderPlaced, placing(submission))
        assert placed.shipping_address == submission.shipping_address
        assert placed.customer == submission.customer


def placing(submission: OrderSubmitted) -> Callable[[OrderPlaced], bool]:
    return lambda placed: placed.external_order_id == submission.external_order_id


async def test_a_submission_breaking_business_rules_is_rejected_with_every_reason(
    scene: Scene,
) -> None:
    fields = order_fields({"SKU-A": 1, "SKU-OLD": 1, "SKU-NEVER": 1})
    fields["total"] = {"amount_minor": 1, "currency": "EUR"}
    submission = submitted(fields)
    await scene.publish(submission)

    [rejected] = await scene.wait_for(
        OrderRejected, lambda e: e.external_order_id == submission.external_order_id
    )

    assert [(reason.code, reason.field) for reason in rejected.reasons] == [
        (OrderRejectionCode.UNKNOWN_SKU, "lines.1.sku"),
        (OrderRejectionCode.UNKNOWN_SKU, "lines.2.sku"),
        (OrderRejectionCode.TOTAL_MISMATCH, "total"),
    ]
    assert await scene.status_of(rejected.order_id) == "rejected"


async def test_an_undeliverable_address_is_rejected(scene: Scene) -> None:
    fields = order_fields()
    fields["shipping_address"] = {
        **fields["shipping_address"],
        "country": "US",
        "postal_code": "10001",
    }
    submission = submitted(fields)
    await scene.publish(submission)

    [rejected] = await scene.wait_for(
        OrderRejected, lambda e: e.external_order_id == submission.external_order_id
    )

    assert [(r.code, r.field) for r in rejected.reasons] == [
        (OrderRejectionCode.INVALID_ADDRESS, "shipping_address.country")
    ]


async def test_a_record_breaking_the_contract_is_rejected_as_a_contract_violation(
    scene: Scene,
) -> None:
    fields = order_fields()
    valid = submitted(fields)
    payload = json.loads(valid.model_dump_json())
    payload["lines"][0]["quantity"] = -1
    payload["gift_wrap"] = True
    record = encode(valid, source="/test")
    topic = scene.names.of_event(OrderSubmitted)
    await publish(
        scene.infrastructure.kafka_bootstrap_servers,
        topic,
        [(record.key, json.dumps(payload).encode(), record.headers)],
    )

    [rejected] = await scene.wait_for(
        OrderRejected, lambda e: e.external_order_id == valid.external_order_id
    )

    assert {(r.code, r.field) for r in rejected.reasons} == {
        (OrderRejectionCode.CONTRACT_VIOLATION, "lines.0.quantity"),
        (OrderRejectionCode.CONTRACT_VIOLATION, "gift_wrap"),
    }
    assert await scene.status_of(rejected.order_id) == "rejected"

    repeat = submitted(fields)
    await scene.publish(repeat)
    await eventually(lambda: scene.consumed(repeat))
    events = await scene.order_events(
        lambda e: getattr(e, "external_order_id", None) == valid.external_order_id
    )
    assert events == [rejected], "a repeat of a rejected submission is a duplicate"


async def test_bytes_that_are_not_json_are_dead_lettered_and_the_next_order_is_placed(
    scene: Scene,
) -> None:
    broken = submitted(order_fields())
    record = encode(broken, source="/test")
    topic = scene.names.of_event(OrderSubmitted)
    garbage = b"\xff\xfe not an order"
    await publish(
        scene.infrastructure.kafka_bootstrap_servers, topic, [(record.key, garbage, record.headers)]
    )
    following = submitted(order_fields())
    await scene.publish(following)

    await scene.wait_for(OrderPlaced, lambda e: e.external_order_id == following.external_order_id)

    async def dead_lettered() -> bool:
        letters = await scene.records("oms.deadletter.order.v1")
        return any(letter.value == garbage for letter in letters)

    await eventually(dead_lettered, timeout=30)
    assert not await scene.order_events(
        lambda e: getattr(e, "external_order_id", None) == broken.external_order_id
    )


async def test_records_the_order_service_cannot_identify_or_does_not_own_are_dead_lettered(
    scene: Scene,
) -> None:
    bootstrap = scene.infrastructure.kafka_bootstrap_servers
    anonymous = submitted(order_fields())
    anonymous_record = encode(anonymous, source="/test")
    anonymous_value = json.dumps({"lines": []}).encode()
    await publish(
        bootstrap,
        scene.names.of_event(OrderSubmitted),
        [(anonymous_record.key, anonymous_value, anonymous_record.headers)],
    )
    # An order-shaped payload on the inventory topic is that topic's broken record, not an
    # order submission: it is not answered with OrderRejected.
    stray = submitted(order_fields())
    stray_record = encode(stock_reserved("ord_stray"), source="/test")
    stray_value = stray.model_dump_json().encode()
    await publish(
        bootstrap,
        scene.names.of_event(StockReserved),
        [(stray_record.key, stray_value, stray_record.headers)],
    )

    async def both_dead_lettered() -> bool:
        letters = {letter.value for letter in await scene.records("oms.deadletter.order.v1")}
        return {anonymous_value, stray_value} <= letters

    await eventually(both_dead_lettered, timeout=30)
    assert not await scene.order_events(
        lambda e: getattr(e, "external_order_id", None) == stray.external_order_id
    )


# --- stock --------------------------------------------------------------------------------------


async def test_stock_reserved_confirms_the_order(scene: Scene) -> None:
    order_id = await place(scene)
    await scene.publish(stock_reserved(order_id))

    [confirmed] = await scene.wait_for(OrderConfirmed, about(order_id))

    assert confirmed.reservation_id == f"res_{order_id}"
    view = (await scene.client.get(f"/orders/{order_id}")).json()
    assert view["status"] == "confirmed" and view["reservation_id"] == f"res_{order_id}"
    assert view["status_history"][-1]["actor"] == "inventory"


async def test_stock_reservation_failure_cancels_the_order(scene: Scene) -> None:
    order_id = await place(scene)
    await scene.publish(
        StockReservationFailed(
            order_id=order_id, shortages=(Shortage(sku="SKU-A", requested=2, available=1),)
        )
    )

    [cancelled] = await scene.wait_for(OrderCancelled, about(order_id))

    assert (
        cancelled.reason is CancellationReason.OUT_OF_STOCK and cancelled.cancelled_by == "system"
    )
    assert await scene.status_of(order_id) == "cancelled"


async def test_a_reservation_arriving_after_a_cancellation_is_ignored(scene: Scene) -> None:
    order_id = await place(scene)
    response = await scene.client.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "customer_request", "cancelled_by": "customer"},
    )
    assert response.status_code == 200
    late = stock_reserved(order_id)
    await scene.publish(late)
    await eventually(lambda: scene.consumed(late))

    assert await scene.status_of(order_id) == "cancelled"
    assert not await scene.order_events(
        lambda e: isinstance(e, OrderConfirmed) and e.order_id == order_id
    )


# --- shipments ----------------------------------------------------------------------------------


async def test_shipments_move_the_order_to_partially_shipped_shipped_and_delivered(
    scene: Scene,
) -> None:
    order_id = await place(scene, {"SKU-A": 2, "SKU-B": 1})
    await scene.publish(stock_reserved(order_id))
    await scene.wait_for(OrderConfirmed, about(order_id))

    # Shipped before its ShipmentCreated: the shipment is recorded all the same.
    await scene.publish(
        shipped(order_id, "shp_1", {"SKU-A": 2}), shipment_created(order_id, "shp_1", {"SKU-A": 2})
    )
    await scene.reaches(order_id, "partially_shipped")

    await scene.publish(
        shipment_created(order_id, "shp_2", {"SKU-B": 1}),
        shipment_created(order_id, "shp_3", {"SKU-B": 1}),
        ShipmentCancelled(
            order_id=order_id, shipment_id="shp_3", reason=ShipmentCancellationReason.OTHER
        ),
        shipped(order_id, "shp_2", {"SKU-B": 1}),
    )
    await scene.reaches(order_id, "shipped")

    first_delivery = delivered(order_id, "shp_1")
    await scene.publish(first_delivery)
    await eventually(lambda: scene.consumed(first_delivery))
    assert await scene.status_of(order_id) == "shipped"

    await scene.publish(delivered(order_id, "shp_2"))
    await scene.reaches(order_id, "delivered")

    view = (await scene.client.get(f"/orders/{order_id}")).json()
    assert {s["shipment_id"]: s["status"] for s in view["shipments"]} == {
        "shp_1": "delivered",
        "shp_2": "delivered",
        "shp_3": "cancelled",
    }
    assert view["shipped_quantities"] == {"SKU-A": 2, "SKU-B": 1}
    assert view["shipments"][0]["planned_lines"] == [{"sku": "SKU-A", "quantity": 2}]
    assert view["delivered_at"] is not None
    assert [change["to_status"] for change in view["status_history"]] == [
        "placed",
        "confirmed",
        "partially_shipped",
        "shipped",
        "delivered",
    ]


async def test_a_reservation_heard_after_the_shipment_confirms_without_moving_back(
    scene: Scene,
) -> None:
    order_id = await place(scene, {"SKU-A": 2, "SKU-B": 1})
    await scene.publish(shipped(order_id, "shp_1", {"SKU-A": 2}))
    await scene.reaches(order_id, "partially_shipped")

    await scene.publish(stock_reserved(order_id))

    await scene.wait_for(OrderConfirmed, about(order_id))
    assert await scene.status_of(order_id) == "partially_shipped"


async def test_events_about_an_unknown_order_are_consumed_and_ignored(scene: Scene) -> None:
    stray = shipped("ord_unknown", "shp_x", {"SKU-A": 1})
    await scene.publish(stray)
    await eventually(lambda: scene.consumed(stray))
    assert (await scene.client.get("/orders/ord_unknown")).status_code == 404


async def test_goods_shipped_after_a_cancellation_are_recorded_and_the_order_stays_cancelled(
    scene: Scene,
) -> None:
    order_id = await place(scene)
    response = await scene.client.post(
        f"/orders/{order_id}/cancel", json={"reason": "fraud", "cancelled_by": "agent:risk"}
    )
    assert response.status_code == 200
    late = shipped(order_id, "shp_late", {"SKU-A": 2})
    await scene.publish(late)
    await eventually(lambda: scene.consumed(late))

    view = (await scene.client.get(f"/orders/{order_id}")).json()
    assert view["status"] == "cancelled"
    assert [(s["shipment_id"], s["status"]) for s in view["shipments"]] == [("shp_late", "shipped")]


# --- commands -----------------------------------------------------------------------------------


async def test_cancel_before_shipment_emits_order_cancelled_and_a_repeat_is_refused(
    scene: Scene,
) -> None:
    order_id = await place(scene)

    response = await scene.client.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "customer_request", "cancelled_by": "agent:jdoe", "note": "changed mind"},
    )

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    [cancelled] = await scene.wait_for(OrderCancelled, about(order_id))
    assert (cancelled.reason, cancelled.cancelled_by, cancelled.note) == (
        CancellationReason.CUSTOMER_REQUEST,
        "agent:jdoe",
        "changed mind",
    )
    assert response.json()["status_history"][-1] | {"at": None} == {
        "from_status": "placed",
        "to_status": "cancelled",
        "at": None,
        "cause_event_id": None,
        "command": "cancel",
        "actor": "agent:jdoe",
    }
    again = await scene.client.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "customer_request", "cancelled_by": "agent:jdoe"},
    )
    assert again.status_code == 409 and again.json()["code"] == "already_cancelled"


async def test_cancel_and_address_change_are_refused_once_something_shipped(scene: Scene) -> None:
    order_id = await place(scene)
    await scene.publish(shipped(order_id, "shp_1", {"SKU-A": 1}))
    await scene.reaches(order_id, "partially_shipped")

    cancel = await scene.client.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "customer_request", "cancelled_by": "customer"},
    )
    change = await scene.client.post(
        f"/orders/{order_id}/shipping-address",
        json={"shipping_address": NEW_ADDRESS.model_dump(mode="json"), "changed_by": "agent:jdoe"},
    )

    assert cancel.status_code == 409 and cancel.json()["code"] == "already_shipped"
    assert change.status_code == 409 and change.json()["code"] == "already_shipped"
    assert not await scene.order_events(
        lambda e: isinstance(e, OrderCancelled) and e.order_id == order_id
    )


async def test_address_change_emits_the_new_address_once(scene: Scene) -> None:
    order_id = await place(scene)
    body = {"shipping_address": NEW_ADDRESS.model_dump(mode="json"), "changed_by": "agent:jdoe"}

    first = await scene.client.post(f"/orders/{order_id}/shipping-address", json=body)
    repeat = await scene.client.post(f"/orders/{order_id}/shipping-address", json=body)

    assert first.status_code == 200 and repeat.status_code == 200
    assert first.json()["shipping_address"]["city"] == "Lyon"
    [changed] = await scene.wait_for(OrderShippingAddressChanged, about(order_id))
    assert changed.shipping_address == NEW_ADDRESS and changed.changed_by == "agent:jdoe"


async def test_an_address_change_follows_the_countrys_address_rules(scene: Scene) -> None:
    order_id = await place(scene)
    without_postcode = NEW_ADDRESS.model_copy(update={"postal_code": None})

    refused = await scene.client.post(
        f"/orders/{order_id}/shipping-address",
        json={
            "shipping_address": without_postcode.model_dump(mode="json"),
            "changed_by": "agent:jdoe",
        },
    )

    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_address"
    assert [reason["field"] for reason in refused.json()["reasons"]] == [
        "shipping_address.postal_code"
    ]
    assert not await scene.order_events(
        lambda e: isinstance(e, OrderShippingAddressChanged) and e.order_id == order_id
    )


async def test_commands_on_an_unknown_order_answer_404(scene: Scene) -> None:
    cancel = await scene.client.post(
        "/orders/ord_nope/cancel", json={"reason": "other", "cancelled_by": "customer"}
    )
    view = await scene.client.get("/orders/ord_nope")
    assert cancel.status_code == 404 and view.status_code == 404
    assert cancel.json()["code"] == "order_not_found"


# --- orders placed over HTTP ---------------------------------------------------------------------


async def test_b2b_orders_go_through_the_same_intake(scene: Scene) -> None:
    body = {**order_fields(channel="b2b"), "placed_by": "rep:jdoe"}

    created = await scene.client.post("/orders", json=body, headers=new_key())
    repeated = await scene.client.post("/orders", json=body, headers=new_key())

    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    assert created.json()["status"] == "placed" and created.json()["placed_by"] == "rep:jdoe"
    assert repeated.status_code == 200 and repeated.json()["order_id"] == order_id
    [placed] = await scene.wait_for(OrderPlaced, about(order_id))
    assert placed.placed_by == "rep:jdoe" and placed.channel == "b2b"
    from_the_topic = submitted(body)
    await scene.publish(from_the_topic)
    await eventually(lambda: scene.consumed(from_the_topic))
    assert await scene.order_events(about(order_id)) == [placed]


async def test_a_rejected_b2b_order_answers_422_with_its_reasons_and_is_still_announced(
    scene: Scene,
) -> None:
    body = {**order_fields({"SKU-NEVER": 1}, channel="b2b"), "placed_by": "rep:jdoe"}

    response = await scene.client.post("/orders", json=body, headers=new_key())

    assert response.status_code == 422
    answer = response.json()
    assert answer["code"] == "order_rejected"
    assert [(r["code"], r["field"]) for r in answer["reasons"]] == [("unknown_sku", "lines.0.sku")]
    [rejected] = await scene.wait_for(OrderRejected, about(answer["order_id"]))
    assert rejected.external_order_id == body["external_order_id"]


async def test_a_b2b_order_without_its_sales_representative_is_not_taken(scene: Scene) -> None:
    body = order_fields(channel="b2b")

    response = await scene.client.post("/orders", json=body, headers=new_key())

    assert response.status_code == 422
    listed = (
        await scene.client.get("/orders", params={"external_order_id": body["external_order_id"]})
    ).json()
    assert listed == {"items": [], "next_cursor": None}


async def test_orders_can_be_listed_by_channel_and_status(scene: Scene) -> None:
    order_id = await place(scene)
    response = await scene.client.get(
        "/orders", params={"channel": "b2b", "status": "placed", "limit": 500}
    )
    assert response.status_code == 200
    assert order_id in [order["order_id"] for order in response.json()["items"]]
    assert all(order["status"] == "placed" for order in response.json()["items"])
    assert (await scene.client.get("/orders", params={"status": "lost"})).status_code == 422


async def test_products_are_listed_and_an_inactive_product_cannot_be_ordered(scene: Scene) -> None:
    products = (await scene.client.get("/products")).json()
    assert {"sku": "SKU-OLD", "name": "Retired", "active": False} in products
    assert (
        await scene.client.put("/products/-bad", json={"name": "x", "active": True})
    ).status_code == 422


# --- returns, refunds, notifications, completion -----------------------------------------


async def deliver_everything(scene: Scene, order_id: str, lines: dict[str, int]) -> None:
    await scene.publish(shipped(order_id, "shp_1", lines), delivered(order_id, "shp_1"))
    await scene.reaches(order_id, "delivered")


def return_requested(order_id: str, return_id: str, lines: dict[str, int]) -> ReturnRequested:
    return ReturnRequested(
        order_id=order_id,
        return_id=return_id,
        lines=tuple(
            ReturnRequestLine(sku=sku, quantity=quantity, reason_code=ReturnReasonCode.DAMAGED)
            for sku, quantity in lines.items()
        ),
        requested_at=datetime.now(UTC),
    )


async def test_returns_move_the_order_to_returned_and_complete_it(scene: Scene) -> None:
    order_id = await place(scene, {"SKU-A": 2, "SKU-B": 1})
    await deliver_everything(scene, order_id, {"SKU-A": 2, "SKU-B": 1})

    await scene.publish(return_requested(order_id, "rma_1", {"SKU-A": 2}))
    await scene.reaches(order_id, "return_requested")
    await scene.publish(
        Returned(order_id=order_id, return_id="rma_1", lines=sku_quantities({"SKU-A": 2})),
        RefundIssued(
            order_id=order_id,
            return_id="rma_1",
            refund_id="re_1",
            amount=eur(2000),
            lines_amount=eur(2000),
            shipping_refunded=eur(0),
            policy="refund_shipping_when_fully_returned",
        ),
    )
    await scene.reaches(order_id, "partially_returned")
    await scene.publish(
        return_requested(order_id, "rma_2", {"SKU-B": 1}),
        Returned(order_id=order_id, return_id="rma_2", lines=sku_quantities({"SKU-B": 1})),
    )

    [completed] = await scene.wait_for(OrderCompleted, about(order_id))

    assert completed.final_status is FinalStatus.RETURNED
    view = (await scene.client.get(f"/orders/{order_id}")).json()
    assert view["status"] == "returned" and view["final_status"] == "returned"
    assert view["returned_quantities"] == {"SKU-A": 2, "SKU-B": 1}
    assert view["refunds"][0]["refund_id"] == "re_1"
    assert view["refunds"][0]["amount"] == {"amount_minor": 2000, "currency": "EUR"}


async def test_a_rejected_return_puts_the_order_back_to_delivered(scene: Scene) -> None:
    order_id = await place(scene, {"SKU-A": 1})
    await deliver_everything(scene, order_id, {"SKU-A": 1})
    await scene.publish(return_requested(order_id, "rma_no", {"SKU-A": 1}))
    await scene.reaches(order_id, "return_requested")

    await scene.publish(
        ReturnRejected(
            order_id=order_id,
            return_id="rma_no",
            reasons=(
                ReturnRejectionReason(
                    code=ReturnRejectionCode.OUTSIDE_RETURN_WINDOW, message="too late"
                ),
            ),
        )
    )

    await scene.reaches(order_id, "delivered")


async def test_a_delivered_order_completes_once_its_return_window_closed(scene: Scene) -> None:
    order_id = await place(scene, {"SKU-C": 1})
    await deliver_everything(scene, order_id, {"SKU-C": 1})
    async with scene.database.begin() as connection:
        await connection.execute(
            db.orders.update()
            .where(db.orders.c.order_id == order_id)
            .values(delivered_at=datetime.now(UTC) - timedelta(days=31))
        )

    [completed] = await scene.wait_for(OrderCompleted, about(order_id))

    assert completed.final_status is FinalStatus.DELIVERED
    late = return_requested(order_id, "rma_late", {"SKU-C": 1})
    await scene.publish(late)
    await eventually(lambda: scene.consumed(late))
    assert await scene.status_of(order_id) == "delivered", "a completed order does not move"
    assert (
        len(
            await scene.order_events(
                lambda e: isinstance(e, OrderCompleted) and e.order_id == order_id
            )
        )
        == 1
    )


async def test_notifications_about_the_order_are_recorded(scene: Scene) -> None:
    order_id = await place(scene)
    placed_event_id = uuid.uuid4()
    await scene.publish(
        NotificationSent(
            subject_key=order_id,
            notification_id="ntf_1",
            cause_event_id=placed_event_id,
            cause_event_type="oms.OrderPlaced.v1",
            channel=NotificationChannel.EMAIL,
            recipient="ada@example.com",
            template="order_placed",
            attempts=1,
        )
    )

    async def recorded() -> bool:
        view = (await scene.client.get(f"/orders/{order_id}")).json()
        return [n["template"] for n in view["notifications"]] == ["order_placed"]

    await eventually(recorded, timeout=30)


# --- the schema ------------------------------------------------------------------------


async def test_the_migration_creates_exactly_the_tables_of_the_code(scene: Scene) -> None:
    assert await differences_from_the_code(scene.database, db.metadata) == []
    async with scene.database.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM alembic_version")) == 2
