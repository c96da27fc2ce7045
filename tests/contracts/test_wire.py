"""The CloudEvents Kafka binding (binary mode): what goes out comes back, and bad records
are refused with an `InvalidEvent` that says what is wrong."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.v1.event import CloudEvent

from contracts import wire
from contracts.base import Event, OrderEvent
from contracts.events.order import OrderPlaced

SOURCE = "/oms/order"


def _record_parts(event: Event, **overrides: Any) -> tuple[dict[str, str], dict[str, Any]]:
    record = wire.encode(event, source=SOURCE)
    return wire.header_map(record.headers), json.loads(record.value) | overrides


def _refusal(headers: dict[str, str], value: bytes) -> str:
    with pytest.raises(wire.InvalidEvent) as refused:
        wire.decode(headers, value)
    return str(refused.value)


def test_every_event_round_trips_through_the_wire_format(any_event: Event) -> None:
    record = wire.encode(any_event, source=SOURCE)

    assert wire.decode(wire.header_map(record.headers), record.value) == any_event


def test_headers_carry_the_cloudevents_attributes_and_the_key_is_the_partition_key(
    any_event: Event,
) -> None:
    cause = UUID("01958e5c-3b2a-7c1e-9f00-123456789abc")
    record = wire.encode(any_event, source=SOURCE, correlation_id="flow-1", causation_id=cause)
    headers = wire.header_map(record.headers)

    assert headers["ce_id"] == str(any_event.event_id)
    assert headers["ce_type"] == any_event.event_type()
    assert headers["ce_source"] == SOURCE
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_subject"] == any_event.subject()
    assert headers["content-type"] == "application/json"
    assert headers["ce_correlationid"] == "flow-1"
    assert headers["ce_causationid"] == str(cause)
    assert record.key == any_event.partition_key().encode()
    if isinstance(any_event, OrderEvent):
        assert headers["ce_subject"] == any_event.order_id == record.key.decode()


def test_records_parse_as_binary_mode_cloudevents_with_the_reference_library(
    any_event: Event,
) -> None:
    record = wire.encode(any_event, source=SOURCE)

    parsed = kafka.from_binary_event(
        kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    )

    assert parsed.get_specversion() == "1.0"
    assert parsed.get_id() == str(any_event.event_id)
    assert parsed.get_type() == any_event.event_type()
    assert parsed.get_source() == SOURCE
    assert parsed.get_subject() == any_event.subject()
    assert parsed.get_time() == any_event.occurred_at
    assert parsed.get_datacontenttype() == "application/json"
    assert parsed.get_extension("partitionkey") == any_event.partition_key()
    assert parsed.get_data() == json.loads(any_event.model_dump_json())


def test_decodes_events_written_by_the_reference_library(order_placed: OrderPlaced) -> None:
    # Another team's producer using the CloudEvents SDK instead of our wire module.
    cloudevent = CloudEvent(
        attributes={
            "id": str(order_placed.event_id),
            "type": order_placed.event_type(),
            "source": "/partner/webshop",
            "subject": order_placed.order_id,
            "datacontenttype": "application/json",
            "partitionkey": order_placed.order_id,
        },
        data=json.loads(order_placed.model_dump_json()),
    )
    message = kafka.to_binary_event(cloudevent)

    assert wire.decode(wire.header_map(message.headers), message.value) == order_placed


def test_refuses_a_value_that_is_not_json(order_placed: OrderPlaced) -> None:
    headers, _ = _record_parts(order_placed)

    assert "Invalid JSON" in _refusal(headers, b"\x00not json{")


REMOVED = object()


def _violation(path: str, value: Any, named_problem: str, case: str) -> Any:
    return pytest.param(path, value, named_problem, id=case)


@pytest.mark.parametrize(
    ("path", "value", "named_problem"),
    [
        _violation(
            "lines.0.quantity",
            "2",
            "lines.0.quantity: Input should be a valid integer",
            "quantity-as-string",
        ),
        _violation(
            "lines.0.quantity",
            0,
            "lines.0.quantity: Input should be greater than 0",
            "zero-quantity",
        ),
        _violation(
            "lines.0.quantity",
            -3,
            "lines.0.quantity: Input should be greater than 0",
            "negative-quantity",
        ),
        _violation(
            "total.amount_minor",
            49.89,
            "total.amount_minor: Input should be a valid integer",
            "float-money",
        ),
        _violation(
            "total.amount_minor",
            4989.0,
            "total.amount_minor: Input should be a valid integer",
            "integral-float-money",
        ),
        _violation(
            "currency", "XTQ", "currency: Value error, 'XTQ' is not an ISO 4217", "unknown-currency"
        ),
        _violation(
            "loyalty_points", 12, "loyalty_points: Extra inputs are not permitted", "unknown-field"
        ),
        _violation(
            "customer.vip",
            True,
            "customer.vip: Extra inputs are not permitted",
            "unknown-nested-field",
        ),
        _violation("order_id", REMOVED, "order_id: Field required", "missing-field"),
        _violation("lines", [], "lines: Tuple should have at least 1 item", "no-lines"),
        _violation(
            "placed_at",
            "2025-03-14T09:26:53",
            "placed_at: Input should have timezone",
            "naive-datetime",
        ),
    ],
)
def test_refuses_a_payload_that_breaks_its_contract_and_names_the_problem(
    order_placed: OrderPlaced, path: str, value: Any, named_problem: str
) -> None:
    headers, payload = _record_parts(order_placed)
    *parents, name = path.split(".")
    container = payload
    for part in parents:
        container = container[int(part)] if isinstance(container, list) else container[part]
    if value is REMOVED:
        del container[name]
    else:
        container[name] = value

    message = _refusal(headers, json.dumps(payload).encode())

    assert message.startswith("oms.OrderPlaced.v1 fails its contract: ")
    assert named_problem in message


def test_refusal_does_not_repeat_the_customers_data(order_placed: OrderPlaced) -> None:
    # The message goes to logs and dead-letter headers; it must not leak personal data.
    headers, payload = _record_parts(order_placed)
    payload["customer"]["email"] = "ada at example dot com"

    message = _refusal(headers, json.dumps(payload).encode())

    assert "customer.email" in message
    assert "ada at example" not in message


@pytest.mark.parametrize("header", wire.REQUIRED_HEADERS)
def test_refuses_a_record_missing_a_required_header(order_placed: OrderPlaced, header: str) -> None:
    headers, payload = _record_parts(order_placed)
    del headers[header]

    message = _refusal(headers, json.dumps(payload).encode())

    assert message == f"missing CloudEvents headers: {header}"


def test_refuses_an_unknown_event_type(order_placed: OrderPlaced) -> None:
    headers, payload = _record_parts(order_placed)
    headers["ce_type"] = "oms.OrderTeleported.v1"

    assert "unknown event type 'oms.OrderTeleported.v1'" in _refusal(
        headers, json.dumps(payload).encode()
    )


def test_refuses_a_ce_id_that_is_not_the_payloads_event_id(order_placed: OrderPlaced) -> None:
    headers, payload = _record_parts(order_placed)
    headers["ce_id"] = "01958e5c-3b2a-7c1e-9f00-000000000000"

    message = _refusal(headers, json.dumps(payload).encode())

    assert "does not match the payload's event_id" in message


def test_refuses_an_unsupported_specversion(order_placed: OrderPlaced) -> None:
    headers, payload = _record_parts(order_placed)
    headers["ce_specversion"] = "0.3"

    assert "unsupported ce_specversion '0.3'" in _refusal(headers, json.dumps(payload).encode())


def test_refuses_a_payload_over_the_size_limit_before_parsing_it(
    order_placed: OrderPlaced,
) -> None:
    headers, _ = _record_parts(order_placed)
    oversized = b"{" + b" " * wire.MAX_EVENT_BYTES + b"}"

    message = _refusal(headers, oversized)

    assert f"exceeds the {wire.MAX_EVENT_BYTES} limit" in message


def test_a_refusal_lists_at_most_a_bounded_number_of_violations(
    order_placed: OrderPlaced,
) -> None:
    headers, payload = _record_parts(order_placed)
    payload["lines"] = [payload["lines"][0] | {"line_id": str(n), "quantity": 0} for n in range(40)]

    message = _refusal(headers, json.dumps(payload).encode())

    assert message.count("Input should be greater than 0") == wire.MAX_REPORTED_VIOLATIONS
    assert "more" in message
