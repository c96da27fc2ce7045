"""The CLI's pure parts: argument parsing, dead-letter decoding and formatting."""

from __future__ import annotations

from typing import get_args

import pytest

from cli import dlq
from cli.commands.dead_letters import ConsumerGroup
from cli.dlq import DeadLetter, escaped_preview
from cli.http import describe_problem, failure_for
from cli.parsing import (
    DeadLetterId,
    ReceivedLine,
    ReturnLine,
    parse_dead_letter_id,
    parse_received_line,
    parse_return_line,
)
from cli.render import money, page_of, timeline_rows, when
from cli.session import ExitCode, Settings
from contracts.catalogue import CONSUMER_GROUPS
from services.kit import dead_letters as kit_dead_letters


def test_parses_a_return_line() -> None:
    assert parse_return_line("LAMP-1:2:damaged") == ReturnLine("LAMP-1", 2, "damaged")
    assert parse_return_line(" LAMP-1 : 1 : other ").as_body() == {
        "sku": "LAMP-1",
        "quantity": 1,
        "reason_code": "other",
    }


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("LAMP-1:2", "is not SKU:QTY:REASON"),
        ("LAMP-1::damaged", "is not SKU:QTY:REASON"),
        ("LAMP-1:two:damaged", "quantity 'two' is not a whole number"),
        ("LAMP-1:0:damaged", "quantity must be at least 1"),
        ("LAMP-1:2:bored", "reason 'bored' is not one of damaged, wrong_item"),
    ],
)
def test_refuses_a_malformed_return_line(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_return_line(text)


def test_parses_a_received_line() -> None:
    assert parse_received_line("LAMP-1:2:1") == ReceivedLine("LAMP-1", 2, 1)
    assert parse_received_line("LAMP-1:2:0").as_body()["restockable_quantity"] == 0


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("LAMP-1:2:3", "restockable quantity 3 exceeds the 2 received"),
        ("LAMP-1:2:-1", "restockable quantity must be at least 0"),
        ("LAMP-1:2:yes", "restockable quantity 'yes' is not a whole number"),
        ("LAMP-1", "is not SKU:QTY:RESTOCKABLE"),
    ],
)
def test_refuses_a_malformed_received_line(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_received_line(text)


def test_parses_and_prints_a_dead_letter_id() -> None:
    parsed = parse_dead_letter_id("order:2:17")
    assert parsed == DeadLetterId("order", 2, 17)
    assert str(parsed) == "order:2:17"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("billing:0:1", "group 'billing' is not one of"),
        ("order:0", "is not <group>:<partition>:<offset>"),
        ("order:-1:3", "partition must be at least 0"),
        ("order:0:x", "offset 'x' is not a whole number"),
    ],
)
def test_refuses_a_malformed_dead_letter_id(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_dead_letter_id(text)


def test_the_cli_knows_every_consumer_group_and_dead_letter_header() -> None:
    assert get_args(ConsumerGroup) == CONSUMER_GROUPS
    for name in (
        "HEADER_PREFIX",
        "ERROR_CLASS",
        "ERROR_MESSAGE",
        "ATTEMPTS",
        "FAILED_AT",
        "SOURCE_TOPIC",
        "SOURCE_PARTITION",
        "SOURCE_OFFSET",
        "CONSUMER_GROUP",
        "VALUE_OMITTED",
    ):
        assert getattr(dlq, name) == getattr(kit_dead_letters, name), name


def _letter(value: bytes | None, *extra: tuple[str, bytes]) -> DeadLetter:
    return DeadLetter(
        id=DeadLetterId("order", 1, 42),
        key=b"webshop:WS-1",
        value=value,
        headers=(
            ("ce_id", b"0191e0a0-0000-7000-8000-000000000001"),
            ("ce_type", b"com.example.oms.channel.OrderSubmitted.v1"),
            ("dlq_error_class", b"contracts.wire.InvalidEvent"),
            ("dlq_error_message", b"InvalidEvent: not JSON"),
            ("dlq_attempts", b"1"),
            ("dlq_failed_at", b"2025-05-01T10:00:00+00:00"),
            ("dlq_topic", b"ns.oms.channel.orders.v1"),
            ("dlq_partition", b"2"),
            ("dlq_offset", b"7"),
            ("dlq_consumer_group", b"order"),
            *extra,
        ),
        timestamp_ms=1_746_093_600_000,
    )


def test_decodes_the_dead_letter_headers() -> None:
    letter = _letter(b'{"a": 1}')
    assert letter.error_class == "contracts.wire.InvalidEvent"
    assert letter.error_message == "InvalidEvent: not JSON"
    assert letter.attempts == 1
    assert letter.failed_at == "2025-05-01T10:00:00+00:00"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "ns.oms.channel.orders.v1",
        2,
        7,
    )
    assert letter.consumer_group == "order"
    assert letter.value_omitted_bytes is None
    summary = letter.summary()
    assert summary["id"] == "order:1:42"
    assert summary["source"] == {"topic": "ns.oms.channel.orders.v1", "partition": 2, "offset": 7}
    assert summary["event_type"] == "com.example.oms.channel.OrderSubmitted.v1"


def test_replays_with_the_records_own_headers_only() -> None:
    letter = _letter(b"x", ("traceparent", b"00-abc-def-01"))
    assert letter.original_headers() == [
        ("ce_id", b"0191e0a0-0000-7000-8000-000000000001"),
        ("ce_type", b"com.example.oms.channel.OrderSubmitted.v1"),
        ("traceparent", b"00-abc-def-01"),
    ]


def test_shows_a_json_value_parsed_and_other_bytes_escaped() -> None:
    assert _letter(b'{"order": [1, 2]}').details()["value"] == {"order": [1, 2]}
    assert _letter(b'{"order": [1, 2]}').details()["value_format"] == "json"
    raw = _letter(b"\xff\xfe\x1b[2Jnot json\n").details()
    assert raw["value_format"] == "bytes"
    assert raw["value"] == "\\xff\\xfe\\x1b[2Jnot json\\n"


def test_an_omitted_value_says_so_and_how_big_it_was() -> None:
    letter = _letter(None, ("dlq_value_omitted_bytes", b"2000000"))
    assert letter.value_omitted_bytes == 2_000_000
    assert letter.details()["value_format"] == "omitted"
    assert letter.details()["value"] is None


def test_a_missing_or_garbled_header_reads_as_unknown() -> None:
    letter = DeadLetter(DeadLetterId("order", 0, 0), None, b"", (("dlq_attempts", b"many"),), 0)
    assert letter.attempts is None
    assert letter.source_topic is None
    assert letter.failed_at == "1970-01-01T00:00:00+00:00", "falls back to the record time"


def test_escaped_preview_cuts_long_values_and_notes_the_size() -> None:
    preview = escaped_preview(b"a" * 50, limit=10)
    assert preview == "aaaaaaaaaa… (50 bytes in all)"
    assert escaped_preview("é ü".encode()) == "é ü"


def test_formats_money_with_the_currencys_decimals() -> None:
    assert money({"amount_minor": 5590, "currency": "EUR"}) == "55.90 EUR"
    assert money({"amount_minor": 7, "currency": "EUR"}) == "0.07 EUR"
    assert money({"amount_minor": -250, "currency": "EUR"}) == "-2.50 EUR"
    assert money({"amount_minor": 1200, "currency": "JPY"}) == "1200 JPY"
    assert money(None) == "—"


def test_formats_times_to_the_second() -> None:
    assert when("2025-05-01T10:00:00.123456+00:00") == "2025-05-01 10:00:00Z"
    assert when("2025-05-01T12:00:00+02:00") == "2025-05-01 12:00:00+0200"
    assert when(None) == "—"
    assert when("yesterday") == "yesterday"


def test_reads_both_shapes_of_a_list_answer() -> None:
    assert page_of([{"order_id": "a"}]) == ([{"order_id": "a"}], None)
    assert page_of({"items": [{"order_id": "a"}], "next_cursor": "c2"}) == (
        [{"order_id": "a"}],
        "c2",
    )
    with pytest.raises(ValueError):
        page_of({"orders": []})


def test_timeline_rows_pick_known_fields_and_keep_the_rest() -> None:
    rows = timeline_rows(
        [
            {
                "occurred_at": "2025-05-01T10:00:00+00:00",
                "service": "inventory",
                "event_type": "StockReserved",
                "warehouse_id": "wh-paris",
                "empty": None,
            },
            {
                "occurred_at": "2025-05-01T10:00:01+00:00",
                "source": "fulfilment",
                "event_type": "oms.Shipped.v1",
                "summary": "Shipment shp_1 shipped",
                "details": {"carrier": "laposte"},
            },
            "odd entry",
        ]
    )
    assert rows == [
        ("2025-05-01 10:00:00Z", "inventory", "StockReserved", "warehouse_id=wh-paris"),
        ("2025-05-01 10:00:01Z", "fulfilment", "oms.Shipped.v1", "Shipment shp_1 shipped"),
        ("—", "—", "odd entry", ""),
    ]
    assert timeline_rows(None) == []


def test_describes_each_error_shape_the_services_answer_with() -> None:
    assert describe_problem({"code": "already_shipped", "message": "it left"}) == "it left"
    assert describe_problem({"detail": "no such notification"}) == "no such notification"
    assert (
        describe_problem(
            {"detail": [{"loc": ["body", "shipping_address", "country"], "msg": "bad code"}]}
        )
        == "shipping_address.country: bad code"
    )


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.REFUSED),
        (422, ExitCode.REFUSED),
        (500, ExitCode.UNREACHABLE),
        (503, ExitCode.UNREACHABLE),
    ],
)
def test_maps_answers_to_exit_codes(status: int, exit_code: ExitCode) -> None:
    failure = failure_for("order", status, {"code": "x", "message": "m"})
    assert failure.exit_code == exit_code
    assert failure.as_json()["error"]["status"] == status


def test_namespaced_topic_names() -> None:
    assert Settings({}, "k", namespace="ns1").topic("oms.order.v1") == "ns1.oms.order.v1"
    assert Settings({}, "k").topic("oms.order.v1") == "oms.order.v1"
