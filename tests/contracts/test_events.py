"""The event models themselves: frozen, strict, keyed right, and checking shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.base import Event, OrderEvent
from contracts.catalogue import TOPICS
from contracts.events import channel, fulfilment, inventory, notification, order, returns
from contracts.events.channel import OrderSubmitted
from contracts.events.common import Address, Customer, OrderLine
from contracts.events.inventory import LowStockDetected
from contracts.events.notification import NotificationFailed
from contracts.events.order import OrderPlaced
from contracts.events.returns import ReceivedLine

from .conftest import ADDRESS, CUSTOMER, LINES, SAMPLES

EVENT_MODULES = (channel, order, inventory, fulfilment, returns, notification)


def _with(model: Any, **changes: Any) -> dict[str, Any]:
    """The model's fields as JSON-ready data, with some changed: for validating variants."""
    data: dict[str, Any] = model.model_dump(mode="json")
    return data | changes


def test_every_event_is_frozen(any_event: Event) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        any_event.event_id = any_event.event_id  # type: ignore[misc]


def test_every_event_is_named_in_the_past_tense_and_typed_by_name_and_version(
    any_event: Event,
) -> None:
    name = type(any_event).__name__
    assert name.endswith(("ed", "Sent")), name
    assert any_event.event_type() == f"oms.{name}.v1"


def test_every_field_of_every_event_is_documented_for_the_asyncapi_reader() -> None:
    undocumented = [
        f"{event.__name__}.{field_name}"
        for module in EVENT_MODULES
        for event in module.EVENTS
        for field_name, schema in event.model_json_schema()["properties"].items()
        if "description" not in schema
        and "$ref" not in schema
        and "allOf" not in schema
        and not _documents_itself(schema)
    ]
    assert undocumented == []


def _documents_itself(schema: dict[str, Any]) -> bool:
    # `X | None` fields whose type carries the description inside the anyOf.
    return any("description" in branch for branch in schema.get("anyOf", []))


def test_events_module_lists_are_exactly_the_catalogue() -> None:
    listed = {event for module in EVENT_MODULES for event in module.EVENTS}
    catalogued = {event for topic in TOPICS for event in topic.events}
    assert listed == catalogued


def test_order_events_are_keyed_and_subjected_by_order_id() -> None:
    for event in SAMPLES.values():
        if isinstance(event, OrderEvent):
            assert event.partition_key() == event.subject() == event.order_id


def test_a_submitted_order_is_keyed_by_channel_and_external_order_id() -> None:
    submitted = SAMPLES[OrderSubmitted]
    assert submitted.partition_key() == submitted.subject() == "webshop:WS-100234"


def test_a_channel_name_cannot_contain_the_key_separator() -> None:
    with pytest.raises(ValidationError, match="channel"):
        OrderSubmitted.model_validate_json(
            OrderSubmitted.model_dump_json(SAMPLES[OrderSubmitted]).replace(
                '"channel":"webshop"', '"channel":"web:shop"'
            )
        )


def test_low_stock_is_keyed_by_sku() -> None:
    low_stock = SAMPLES[LowStockDetected]
    assert low_stock.partition_key() == low_stock.subject() == "MUG-RED"


def test_notification_outcomes_travel_under_their_causes_key() -> None:
    failed = SAMPLES[NotificationFailed]
    assert isinstance(failed, NotificationFailed)
    assert failed.partition_key() == failed.subject_key == "ord_01HZX3"
    assert not isinstance(failed, OrderEvent)


def test_strict_models_do_not_coerce_python_values_either() -> None:
    with pytest.raises(ValidationError, match="quantity"):
        OrderLine(
            line_id="1",
            sku="MUG-RED",
            quantity="2",  # type: ignore[arg-type]
            unit_price=LINES[0].unit_price,
            line_total=LINES[0].line_total,
        )


def test_an_order_has_between_1_and_500_lines() -> None:
    placed = SAMPLES[OrderPlaced]
    too_many = [LINES[0].model_dump(mode="json") | {"line_id": str(n)} for n in range(501)]

    with pytest.raises(ValidationError, match="at most 500"):
        OrderPlaced.model_validate(_with(placed, lines=too_many), strict=False)
    with pytest.raises(ValidationError, match="at least 1"):
        OrderPlaced.model_validate(_with(placed, lines=[]), strict=False)


def test_occurred_at_is_normalised_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    event = LowStockDetected(
        sku="MUG-RED",
        warehouse_id="wh-1",
        available=0,
        threshold=5,
        occurred_at=datetime(2025, 3, 14, 10, 0, tzinfo=paris),
    )
    assert event.occurred_at == datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_event_ids_are_version_7_uuids() -> None:
    event = LowStockDetected(sku="S", warehouse_id="w", available=0, threshold=1)
    assert event.event_id.version == 7


@pytest.mark.parametrize("country", ["FR", "CA", "DE"])
def test_an_address_accepts_iso_country_codes(country: str) -> None:
    assert Address.model_validate(_with(ADDRESS, country=country), strict=False).country == country


@pytest.mark.parametrize("country", ["ZZ", "fr", "FRA", "UK"])
def test_an_address_refuses_anything_but_a_known_iso_alpha_2_country(country: str) -> None:
    with pytest.raises(ValidationError, match="country"):
        Address.model_validate(_with(ADDRESS, country=country))


@pytest.mark.parametrize(
    "email", ["ada", "ada@", "@example.com", "ada@example", "a da@example.com"]
)
def test_a_customer_email_must_look_like_an_email(email: str) -> None:
    with pytest.raises(ValidationError, match="email"):
        Customer.model_validate(_with(CUSTOMER, email=email))


@pytest.mark.parametrize("locale", ["en", "fr", "fr-CA", "pt-BR"])
def test_a_customer_locale_is_a_language_with_an_optional_region(locale: str) -> None:
    assert Customer.model_validate(_with(CUSTOMER, locale=locale)).locale == locale


@pytest.mark.parametrize("locale", ["EN", "fr_CA", "fr-ca", "english"])
def test_a_customer_locale_refuses_other_shapes(locale: str) -> None:
    with pytest.raises(ValidationError, match="locale"):
        Customer.model_validate(_with(CUSTOMER, locale=locale))


def test_restockable_quantity_cannot_exceed_the_quantity_received() -> None:
    with pytest.raises(ValidationError, match=r"restockable_quantity \(3\) exceeds quantity \(2\)"):
        ReceivedLine(sku="MUG-RED", quantity=2, restockable_quantity=3)
    assert ReceivedLine(sku="MUG-RED", quantity=2, restockable_quantity=2).restockable_quantity == 2
