"""The channel publisher against the real broker: what lands on the inbound topic."""

from __future__ import annotations

import pytest

from adapters.publisher import ChannelPublisher, PublishFailed
from contracts.wire import decode, header_map
from tests.adapters.orders import order_document, submitted_order
from tests.infrastructure import Infrastructure
from tests.kafka_tools import read_to_end
from tests.service_harness import fresh_namespace

pytestmark = pytest.mark.integration


async def test_orders_land_on_the_namespaced_inbound_topic_keyed_and_decodable(
    infrastructure: Infrastructure,
) -> None:
    names = await fresh_namespace(infrastructure)
    orders = [submitted_order(channel="webshop") for _ in range(30)]
    as_dict = order_document(channel="webshop")

    async with ChannelPublisher(
        infrastructure.kafka_bootstrap_servers,
        source="/webshop",
        namespace=names.namespace,
        max_in_flight=5,
    ) as publisher:
        outcomes = await publisher.publish_many(orders)
        receipt = await publisher.publish(as_dict)

    assert all(outcome.accepted for outcome in outcomes)
    assert receipt.topic == names.physical("oms.channel.orders.v1")
    records = await read_to_end(infrastructure.kafka_bootstrap_servers, receipt.topic)
    by_key = {record.key: record for record in records}
    assert len(records) == 31
    for order in orders:
        record = by_key[order.partition_key().encode()]
        headers = header_map(record.headers)
        assert headers["ce_source"] == "/webshop"
        assert headers["ce_type"] == "oms.OrderSubmitted.v1"
        assert decode(headers, record.value) == order
    last = by_key[f"webshop:{as_dict['external_order_id']}".encode()]
    assert (last.partition, last.offset) == (receipt.partition, receipt.offset)


async def test_a_broker_that_does_not_answer_is_a_publish_failure_within_the_timeout() -> None:
    publisher = ChannelPublisher("127.0.0.1:1", source="/webshop", timeout_seconds=2)

    with pytest.raises(PublishFailed, match="cannot reach the broker"):
        await publisher.publish(submitted_order())
