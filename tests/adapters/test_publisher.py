"""The channel publisher without a broker: contract checks before sending, the record it
hands the producer, and what it does when the broker fails (a stand-in producer)."""

from __future__ import annotations

import pytest

from adapters.publisher import InvalidOrder, PublishFailed, inbound_topic, validate_order
from contracts.wire import decode, header_map
from tests.adapters.orders import order_document, submitted_order
from tests.adapters.stand_in import StandInProducer, publisher_with


def test_inbound_topic_takes_the_namespace_as_a_prefix() -> None:
    assert inbound_topic() == "oms.channel.orders.v1"
    assert inbound_topic("staging") == "staging.oms.channel.orders.v1"


def test_a_dict_is_validated_against_the_contract_listing_every_field_problem() -> None:
    document = order_document()
    document["lines"][0]["quantity"] = 0
    document["currency"] = "EURO"
    document["customer"]["email"] = "not an address"

    with pytest.raises(InvalidOrder) as raised:
        validate_order(document)

    fields = {problem.field for problem in raised.value.problems}
    assert fields == {"lines.0.quantity", "currency", "customer.email"}
    assert "lines.0.quantity: Input should be greater than 0" in str(raised.value)


def test_a_dict_with_floats_for_money_is_refused() -> None:
    document = order_document()
    document["total"]["amount_minor"] = 55.9

    with pytest.raises(InvalidOrder, match=r"total\.amount_minor"):
        validate_order(document)


async def test_publishes_keyed_by_channel_and_external_id_with_cloudevents_headers() -> None:
    producer = StandInProducer()
    order = submitted_order(channel="webshop", external_order_id="WS-1")

    async with publisher_with(producer, namespace="t1") as publisher:
        receipt = await publisher.publish(order)

    assert producer.started and producer.stopped
    [(topic, key, value, headers)] = producer.sent
    assert topic == "t1.oms.channel.orders.v1"
    assert key == b"webshop:WS-1"
    named = header_map(headers)
    assert named["ce_type"] == "oms.OrderSubmitted.v1"
    assert named["ce_source"] == "/webshop"
    assert named["ce_subject"] == "webshop:WS-1"
    assert named["ce_id"] == str(order.event_id)
    assert decode(named, value or b"") == order
    assert (receipt.key, receipt.event_id, receipt.offset) == ("webshop:WS-1", order.event_id, 0)


async def test_an_invalid_order_sends_nothing() -> None:
    producer = StandInProducer()
    document = order_document()
    document["lines"] = []

    async with publisher_with(producer) as publisher:
        with pytest.raises(InvalidOrder, match="lines"):
            await publisher.publish(document)

    assert producer.sent == []


async def test_an_unreachable_broker_is_a_publish_failure() -> None:
    publisher = publisher_with(StandInProducer(fail_start=True))

    with pytest.raises(PublishFailed, match="cannot reach the broker"):
        await publisher.publish(submitted_order())


async def test_after_a_failed_acknowledgement_the_next_publish_uses_a_new_producer() -> None:
    failing, healthy = StandInProducer(fail_delivery=True), StandInProducer()
    publisher = publisher_with(failing, healthy)

    with pytest.raises(PublishFailed, match="did not acknowledge"):
        await publisher.publish(submitted_order())
    receipt = await publisher.publish(submitted_order())
    await publisher.stop()

    assert failing.stopped
    assert len(healthy.sent) == 1 and receipt.offset == 0


async def test_publish_many_bounds_the_sends_awaiting_acknowledgement() -> None:
    producer = StandInProducer()
    documents = [order_document() for _ in range(20)]
    documents[3]["currency"] = "XYZ"
    seen: list[int] = []

    async with publisher_with(producer, max_in_flight=4) as publisher:
        outcomes = await publisher.publish_many(
            documents, on_outcome=lambda outcome: seen.append(outcome.index)
        )

    assert producer.most_in_flight == 4
    assert [outcome.index for outcome in outcomes] == list(range(20))
    assert sorted(seen) == list(range(20))
    assert [outcome.accepted for outcome in outcomes].count(True) == 19
    refused = outcomes[3]
    assert refused.receipt is None and refused.problems[0].field == "currency"
    assert len(producer.sent) == 19


async def test_publish_many_stops_sending_after_the_broker_fails() -> None:
    producer = StandInProducer(fail_delivery=True)

    async with publisher_with(producer, max_in_flight=1) as publisher:
        outcomes = await publisher.publish_many([order_document() for _ in range(5)])

    assert len(producer.sent) == 1
    assert all(outcome.error for outcome in outcomes)
    assert "not sent after an earlier failure" in (outcomes[4].error or "")
