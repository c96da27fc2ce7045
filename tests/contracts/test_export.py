"""The committed export (JSON Schemas, AsyncAPI) is what the models say, and the exporter
refuses to overwrite a committed schema with a breaking change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from contracts import export, wire
from contracts.base import Event
from contracts.catalogue import TOPICS
from contracts.events.pricing import TOTAL_FORMULA

from .conftest import CATALOGUED_EVENTS


@pytest.mark.parametrize("event", CATALOGUED_EVENTS, ids=lambda event: event.__name__)
def test_every_catalogued_event_has_a_committed_schema_identical_to_its_model(
    event: type[Event],
) -> None:
    path = export.schema_path(event)

    assert path.exists(), f"{path.name} is missing: run python -m contracts.export"
    assert path.read_text(encoding="utf-8") == export.render(export.event_schema(event)), (
        f"{path.name} is stale: run python -m contracts.export"
    )


def test_the_committed_asyncapi_document_is_current() -> None:
    committed = export.ASYNCAPI_PATH.read_text(encoding="utf-8")

    assert committed == export.render(export.asyncapi_document()), (
        "asyncapi.json is stale: run python -m contracts.export"
    )


def test_check_passes_on_the_committed_export() -> None:
    assert export.main(["--check"]) == 0


def test_the_asyncapi_document_is_the_same_every_time_it_is_built() -> None:
    assert export.render(export.asyncapi_document()) == export.render(export.asyncapi_document())


def test_the_asyncapi_document_describes_every_event_on_its_topic() -> None:
    document = export.asyncapi_document()

    for topic in TOPICS:
        for event in topic.events:
            channel = document["channels"][f"{topic.name}:{event.__name__}"]
            assert channel["address"] == topic.name
            assert channel["x-key"] == topic.key
            assert channel["x-producer"] == topic.producer
            assert channel["x-consumers"] == list(topic.consumers)
            message_ref = channel["messages"]["Message"]["$ref"]
            message = _follow(document, message_ref)
            assert message["name"] == event.__name__
            assert message["payload"] == {"$ref": f"#/components/schemas/{event.__name__}"}
            assert message["headers"]["allOf"][1] == {
                "properties": {"ce_type": {"const": event.event_type()}}
            }
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            assert message["correlationId"]["location"] == "$message.header#/ce_correlationid"


def test_the_asyncapi_document_describes_the_cloudevents_headers() -> None:
    headers = export.asyncapi_document()["components"]["schemas"]["CloudEventsHeaders"]

    assert set(wire.REQUIRED_HEADERS) <= set(headers["required"])
    assert headers["properties"]["ce_specversion"]["const"] == "1.0"
    assert {"ce_id", "ce_type", "ce_source", "ce_time", "ce_subject", "traceparent"} <= set(
        headers["properties"]
    )


def test_the_asyncapi_payloads_document_fields() -> None:
    schemas = export.asyncapi_document()["components"]["schemas"]

    total = schemas["OrderPlaced"]["properties"]["total"]
    assert total["description"] == f"What the customer pays: {TOTAL_FORMULA}"
    assert schemas["Money"]["properties"]["amount_minor"]["type"] == "integer"


def _follow(document: dict[str, Any], reference: str) -> Any:
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


# --- the exporter on a scratch copy of the committed export --------------------------


@pytest.fixture
def scratch_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(export.SCHEMA_ROOT, root)
    monkeypatch.setattr(export, "SCHEMA_ROOT", root)
    monkeypatch.setattr(export, "ASYNCAPI_PATH", root / "asyncapi.json")
    return root


def _edit_schema(path: Path, change: Any) -> str:
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    text = export.render(schema)
    path.write_text(text, encoding="utf-8")
    return text


def test_check_names_stale_and_orphaned_files_and_changes_nothing(
    scratch_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = scratch_export / "v1" / "Shipped.json"
    stale_text = _edit_schema(stale, lambda schema: schema.update(description="edited by hand"))
    orphan = scratch_export / "v1" / "OrderTeleported.json"
    orphan.write_text("{}\n", encoding="utf-8")

    assert export.main(["--check"]) == 1

    reported = capsys.readouterr().err
    assert "Shipped.json" in reported
    assert "OrderTeleported.json" in reported
    assert "OrderPlaced.json" not in reported
    assert stale.read_text(encoding="utf-8") == stale_text
    assert orphan.exists()


def test_export_refuses_a_breaking_change_and_writes_nothing(
    scratch_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The committed schema has a field the model no longer has: the model removed it.
    committed = scratch_export / "v1" / "OrderConfirmed.json"
    committed_text = _edit_schema(committed, _add_required_field("legacy_code"))
    asyncapi = scratch_export / "asyncapi.json"
    asyncapi.write_text("{}\n", encoding="utf-8")

    assert export.main([]) == 1

    reported = capsys.readouterr().err
    assert "OrderConfirmed: property 'legacy_code' was removed" in reported
    assert "v2" in reported
    assert committed.read_text(encoding="utf-8") == committed_text
    assert asyncapi.read_text(encoding="utf-8") == "{}\n"


def test_export_refuses_to_drop_the_schema_of_a_removed_event(
    scratch_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    retired = scratch_export / "v1" / "OrderTeleported.json"
    retired.write_text("{}\n", encoding="utf-8")

    assert export.main([]) == 1

    assert "OrderTeleported: the event was removed" in capsys.readouterr().err
    assert retired.exists()


def test_export_overwrites_a_breaking_change_when_explicitly_allowed(
    scratch_export: Path,
) -> None:
    committed = scratch_export / "v1" / "OrderConfirmed.json"
    _edit_schema(committed, _add_required_field("legacy_code"))

    assert export.main(["--allow-breaking"]) == 0

    assert export.main(["--check"]) == 0


def test_export_accepts_a_new_optional_field(scratch_export: Path) -> None:
    # The committed schema predates the optional `note`: adding it is compatible.
    committed = scratch_export / "v1" / "OrderCancelled.json"
    _edit_schema(committed, lambda schema: schema["properties"].pop("note"))

    assert export.main([]) == 0

    assert "note" in json.loads(committed.read_text(encoding="utf-8"))["properties"]


def _add_required_field(name: str) -> Any:
    def change(schema: dict[str, Any]) -> None:
        schema["properties"][name] = {"type": "string"}
        schema["required"].append(name)

    return change


def test_the_asyncapi_export_refuses_two_models_sharing_one_name() -> None:
    # FastStream files nested models by bare class name; a clash would go unnoticed.
    schemas = export.asyncapi_document()["components"]["schemas"]
    schemas["Money"] = {"title": "Money", "type": "object", "properties": {}}

    with pytest.raises(ValueError, match="'Money' does not match"):
        export._check_every_payload_is_intact(schemas)
