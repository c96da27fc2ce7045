"""The commands without a running system: usage errors, --help, and how answers of the
services (played by a mock HTTP transport) become output and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cli import session as cli_session
from cli.main import app
from cli.session import Settings

runner = CliRunner()
Handler = Callable[[httpx.Request], httpx.Response]


def serve(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> list[httpx.Request]:
    """Plays the services with `handler`; returns the list the requests are kept in."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    def client(settings: Settings) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(record), timeout=1)

    monkeypatch.setattr(cli_session, "make_http_client", client)
    return seen


def answer(status: int, body: Any) -> Handler:
    return lambda _request: httpx.Response(status, json=body)


ORDER_SUMMARY = {
    "order_id": "ord_1",
    "channel": "webshop",
    "external_order_id": "WS-1",
    "status": "confirmed",
    "customer_id": "cus_1",
    "total": {"amount_minor": 5590, "currency": "EUR"},
    "created_at": "2025-05-01T10:00:00+00:00",
}


def test_help_lists_the_exit_codes_and_every_group() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for words in ("Exit codes", "3 not found", "4 a service", "orders", "dead-letters"):
        assert words in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["orders", "list"],
        ["orders", "show"],
        ["orders", "cancel"],
        ["orders", "change-address"],
        ["stock", "show"],
        ["stock", "receive"],
        ["stock", "adjust"],
        ["shipments", "list"],
        ["shipments", "pick"],
        ["shipments", "pack"],
        ["shipments", "ship"],
        ["shipments", "deliver"],
        ["returns", "request"],
        ["returns", "approve"],
        ["returns", "receive"],
        ["returns", "show"],
        ["dead-letters", "list"],
        ["dead-letters", "show"],
        ["dead-letters", "replay"],
        ["status"],
    ],
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert f"oms {' '.join(command)}" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["orders", "cancel", "ord_1", "--by", "agent:x"], "--reason"),
        (["orders", "cancel", "ord_1", "--reason", "bored", "--by", "a"], "bored"),
        (["returns", "request", "ord_1", "--line", "LAMP:2"], "SKU:QTY:REASON"),
        (["returns", "receive", "rma_1", "--line", "LAMP:1:2"], "exceeds"),
        (["stock", "receive", "SKU", "wh", "0", "--reference", "r"], "quantity"),
        (["stock", "adjust", "SKU", "wh", "0", "--reason", "r"], "must not be 0"),
        (["dead-letters", "show", "billing:0:1"], "billing"),
        (["dead-letters", "replay"], "--all --group"),
        (["dead-letters", "replay", "--all"], "--all needs --group"),
        (["dead-letters", "replay", "order:0:1", "--all", "--group", "order"], "not both"),
        (["dead-letters", "list", "--group", "billing"], "billing"),
        (["orders", "list", "--limit", "0"], "--limit"),
    ],
)
def test_a_wrong_command_line_is_a_usage_error(arguments: list[str], complaint: str) -> None:
    result = runner.invoke(app, arguments, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert complaint in result.stderr


def test_lists_orders_of_either_answer_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    for body in ([ORDER_SUMMARY], {"items": [ORDER_SUMMARY], "next_cursor": "c2"}):
        serve(monkeypatch, answer(200, body))
        result = runner.invoke(app, ["orders", "list", "--json"])
        assert result.exit_code == 0, result.output
        listed = json.loads(result.stdout)
        assert listed["items"] == [ORDER_SUMMARY]
        assert listed["next_cursor"] == (None if isinstance(body, list) else "c2")


def test_list_passes_the_filters_and_shows_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = serve(monkeypatch, answer(200, {"items": [ORDER_SUMMARY], "next_cursor": None}))
    result = runner.invoke(
        app,
        ["orders", "list", "--channel", "webshop", "--status", "confirmed", "--limit", "5"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert dict(seen[0].url.params) == {"channel": "webshop", "status": "confirmed", "limit": "5"}
    assert "ord_1" in result.stdout and "55.90 EUR" in result.stdout


def test_customer_filter_holds_even_when_the_service_ignores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = {**ORDER_SUMMARY, "order_id": "ord_2", "customer_id": "cus_2"}
    serve(monkeypatch, answer(200, [ORDER_SUMMARY, other]))
    result = runner.invoke(app, ["--json", "orders", "list", "--customer", "cus_2"])
    assert [item["order_id"] for item in json.loads(result.stdout)["items"]] == ["ord_2"]


@pytest.mark.parametrize(
    ("status", "body", "exit_code", "shown"),
    [
        (409, {"code": "already_shipped", "message": "a shipment left"}, 1, "already_shipped"),
        (422, {"detail": [{"loc": ["body", "cancelled_by"], "msg": "bad actor"}]}, 1, "bad actor"),
        (404, {"code": "order_not_found", "message": "no order ord_1"}, 3, "no order ord_1"),
        (500, {"detail": "boom"}, 4, "boom"),
    ],
)
def test_a_refusal_has_its_exit_code_and_one_json_error(
    monkeypatch: pytest.MonkeyPatch, status: int, body: Any, exit_code: int, shown: str
) -> None:
    serve(monkeypatch, answer(status, body))
    arguments = ["orders", "cancel", "ord_1", "--reason", "customer_request", "--by", "agent:x"]
    human = runner.invoke(app, arguments)
    assert human.exit_code == exit_code
    assert shown in human.stderr
    assert human.stdout == ""
    machine = runner.invoke(app, [*arguments, "--json"])
    assert machine.exit_code == exit_code
    error = json.loads(machine.stdout)["error"]
    assert error["exit_code"] == exit_code and error["status"] == status


def test_a_closed_port_is_exit_code_4() -> None:
    result = runner.invoke(
        app, ["--order-url", "http://127.0.0.1:9", "--json", "orders", "show", "x"]
    )
    assert result.exit_code == 4
    assert json.loads(result.stdout)["error"]["kind"] == "unreachable"
    assert "cannot reach the order service" in result.stderr


def test_an_answer_that_is_not_json_is_exit_code_4(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, lambda _request: httpx.Response(200, text="<html>proxy</html>"))
    assert runner.invoke(app, ["orders", "show", "ord_1"]).exit_code == 4


def test_adjust_takes_a_negative_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    change = {
        "sku": "SKU",
        "warehouse_id": "wh",
        "on_hand": 7,
        "reserved": 0,
        "available": 7,
        "duplicate": False,
    }
    seen = serve(monkeypatch, answer(200, change))
    result = runner.invoke(app, ["stock", "adjust", "SKU", "wh", "-3", "--reason", "broken"])
    assert result.exit_code == 0, result.output
    assert json.loads(seen[0].content)["delta"] == -3


def test_return_lines_become_the_request_body(monkeypatch: pytest.MonkeyPatch) -> None:
    rma = {"return_id": "rma_1", "order_id": "ord_1", "status": "requested", "lines": []}
    seen = serve(monkeypatch, answer(201, rma))
    result = runner.invoke(
        app,
        ["returns", "request", "ord_1", "--line", "A:1:damaged", "--line", "B:2:other", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(seen[0].content) == {
        "order_id": "ord_1",
        "lines": [
            {"sku": "A", "quantity": 1, "reason_code": "damaged"},
            {"sku": "B", "quantity": 2, "reason_code": "other"},
        ],
    }
    assert json.loads(result.stdout) == rma


def test_a_rejected_return_request_exits_1_with_the_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rma = {
        "return_id": "rma_1",
        "order_id": "ord_1",
        "status": "rejected",
        "lines": [],
        "rejection_reasons": [{"code": "not_shipped", "field": None, "message": "not shipped"}],
    }
    serve(monkeypatch, answer(201, rma))
    result = runner.invoke(app, ["returns", "request", "ord_1", "--line", "A:1:damaged", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["return"] == rma


def test_values_from_the_system_are_never_read_as_markup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(monkeypatch, answer(200, [{**ORDER_SUMMARY, "external_order_id": "[bold]WS[/bold]"}]))
    result = runner.invoke(app, ["orders", "list"], env={"COLUMNS": "200"})
    assert "[bold]WS[/bold]" in result.stdout


def test_show_renders_every_section_and_the_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    order = {
        **ORDER_SUMMARY,
        "customer": {
            "customer_id": "cus_1",
            "email": "a@example.com",
            "name": "Ada",
            "locale": "en",
        },
        "lines": [
            {
                "line_id": "l1",
                "sku": "LAMP",
                "quantity": 2,
                "unit_price": {"amount_minor": 2500, "currency": "EUR"},
                "line_total": {"amount_minor": 5000, "currency": "EUR"},
            }
        ],
        "shipped_quantities": {"LAMP": 2},
        "returned_quantities": {},
        "shipments": [{"shipment_id": "shp_1", "status": "shipped", "tracking_number": "TRK1"}],
        "returns": [],
        "refunds": [],
        "notifications": [],
        "status_history": [
            {
                "from_status": None,
                "to_status": "placed",
                "at": "2025-05-01T10:00:00+00:00",
                "actor": "customer",
                "command": None,
                "cause_event_id": "e1",
            }
        ],
        "rejection_reasons": [],
        "timeline": [
            {"at": "2025-05-01T10:00:01+00:00", "service": "inventory", "type": "StockReserved"}
        ],
    }
    serve(monkeypatch, answer(200, order))
    result = runner.invoke(app, ["orders", "show", "ord_1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for words in ("Lines", "TRK1", "Returns: none", "Status history", "Timeline", "StockReserved"):
        assert words in result.stdout, words


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = serve(monkeypatch, answer(200, []))
    result = runner.invoke(
        app, ["orders", "list"], env={"OMS_ORDER_URL": "http://orders.internal:9000"}
    )
    assert result.exit_code == 0, result.output
    assert str(seen[0].url).startswith("http://orders.internal:9000/orders")


def test_an_unreachable_kafka_is_exit_code_4() -> None:
    result = runner.invoke(app, ["--kafka", "127.0.0.1:9", "dead-letters", "list", "--json"])
    assert result.exit_code == 4, result.output
    assert "cannot use Kafka at 127.0.0.1:9" in json.loads(result.stdout)["error"]["message"]
