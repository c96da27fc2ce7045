"""Exports the contracts for people and programs outside this repository.

`python -m contracts.export` writes one JSON Schema per event to
`contracts/schemas/v<major>/<Event>.json` and the AsyncAPI document of every topic to
`contracts/schemas/asyncapi.json`. Both are committed: downstream teams read them, and
the tests fail when they drift from the models.

`--check` changes nothing and exits non-zero, naming the files, when the committed export
is not what the models produce. Overwriting (or deleting) a committed schema in a way
that would reject events the old one accepted is refused unless `--allow-breaking` is
given: a breaking change belongs in a new v2 event on a v2 topic, not in an edit of v1.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from contracts import wire
from contracts.base import SPEC_VERSION, Event
from contracts.catalogue import TOPICS, Topic, dead_letter_topic
from contracts.compat import breaking_changes

SCHEMA_ROOT = Path(__file__).parent / "schemas"
ASYNCAPI_PATH = SCHEMA_ROOT / "asyncapi.json"
KAFKA_BINDING_VERSION = "0.4.0"  # the version FastStream writes for its channel bindings


def render(document: dict[str, Any]) -> str:
    """Stable text: sorted keys, fixed indentation, one trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def event_schema(event: type[Event]) -> dict[str, Any]:
    """The JSON Schema of an event as it is written on the wire."""
    return event.model_json_schema(mode="serialization")


def schema_path(event: type[Event]) -> Path:
    return SCHEMA_ROOT / f"v{event.VERSION}" / f"{event.__name__}.json"


def catalogued_events() -> list[type[Event]]:
    return [event for topic in TOPICS for event in topic.events]


def expected_export() -> dict[Path, str]:
    """Every exported file and the text the models say it should hold."""
    files = {schema_path(event): render(event_schema(event)) for event in catalogued_events()}
    files[ASYNCAPI_PATH] = render(asyncapi_document())
    return files


def committed_schema_files() -> list[Path]:
    return sorted(SCHEMA_ROOT.glob("v*/*.json"))


# --- AsyncAPI -------------------------------------------------------------------------


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: FastStream describes each (topic, event) publisher and
    its payload; we add what FastStream does not know: the CloudEvents headers, the record
    key, and who produces and consumes each topic."""
    broker = KafkaBroker(
        specification_url="localhost:9092",
        description="The OMS Kafka cluster (set KAFKA_BOOTSTRAP_SERVERS for yours)",
    )
    for topic in TOPICS:
        for event in topic.events:
            broker.publisher(
                topic.name,
                schema=event,
                title=_channel_name(topic, event),
                description=_channel_description(topic, event),
            )
    app = FastStream(
        broker,
        specification=AsyncAPI(
            title="OMS events",
            version=f"{SPEC_VERSION}.0.0",
            description=_overview(),
        ),
    )
    document: dict[str, Any] = json.loads(app.schema.to_specification().to_json())
    components = document["components"]
    _check_every_payload_is_intact(components["schemas"])
    components["schemas"]["CloudEventsHeaders"] = _cloudevents_headers_schema()
    for topic in TOPICS:
        for event in topic.events:
            channel = document["channels"][_channel_name(topic, event)]
            channel.update({"x-key": topic.key, "x-producer": topic.producer})
            channel["x-consumers"] = list(topic.consumers)
            message = components["messages"][f"{_channel_name(topic, event)}:Message"]
            message.update(_message_details(topic, event))
    return document


def _check_every_payload_is_intact(schemas: dict[str, Any]) -> None:
    """FastStream files every model, nested ones included, under its bare class name; two
    models with one name would silently share one schema. Refuse to publish that."""
    for event in catalogued_events():
        # FastStream's payloads are validation-mode schemas with refs moved to components.
        text = json.dumps(event.model_json_schema()).replace('"#/$defs/', '"#/components/schemas/')
        payload = json.loads(text)
        for name, definition in {**payload.pop("$defs", {}), event.__name__: payload}.items():
            if schemas.get(name) != definition:
                raise ValueError(
                    f"the AsyncAPI schema {name!r} does not match {event.__name__}'s: "
                    "two models may share that name; rename one"
                )


def _channel_name(topic: Topic, event: type[Event]) -> str:
    return f"{topic.name}:{event.__name__}"


def _channel_description(topic: Topic, event: type[Event]) -> str:
    return (
        f"`{event.__name__}` on topic `{topic.name}`. {topic.description}\n\n"
        f"- key: {topic.key}\n"
        f"- producer: {topic.producer}\n"
        f"- consumers (group ids): {', '.join(topic.consumers)}\n"
        f"- dead letters: {', '.join(f'`{dead_letter_topic(c)}`' for c in topic.consumers)}"
    )


def _message_details(topic: Topic, event: type[Event]) -> dict[str, Any]:
    return {
        "name": event.__name__,
        "title": event.event_type(),
        "summary": _docstring(event).split("\n\n")[0].replace("\n", " "),
        "description": _docstring(event),
        "contentType": wire.CONTENT_TYPE,
        "correlationId": {
            "description": "Shared by every event of one business flow",
            "location": f"$message.header#/{wire.HEADER_CORRELATION_ID}",
        },
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEventsHeaders"},
                {"properties": {wire.HEADER_TYPE: {"const": event.event_type()}}},
            ]
        },
        "bindings": {
            "kafka": {
                "bindingVersion": KAFKA_BINDING_VERSION,
                "key": {"type": "string", "description": f"Record key: {topic.key}"},
            }
        },
    }


def _docstring(event: type[Event]) -> str:
    return inspect.getdoc(event) or event.__name__


def _cloudevents_headers_schema() -> dict[str, Any]:
    def text(description: str, **more: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **more}

    return {
        "title": "CloudEventsHeaders",
        "description": (
            "Kafka record headers: the CloudEvents Kafka protocol binding, binary content "
            "mode (values are UTF-8 text). The record value is the event's JSON payload."
        ),
        "type": "object",
        "properties": {
            wire.HEADER_ID: text("The payload's event_id", format="uuid"),
            wire.HEADER_TYPE: text("Event type, `oms.<Event>.v<major>`"),
            wire.HEADER_SOURCE: text("Emitting service", examples=["/oms/order"]),
            wire.HEADER_SPECVERSION: text("CloudEvents version", const=wire.SPECVERSION),
            wire.HEADER_TIME: text("The payload's occurred_at", format="date-time"),
            wire.HEADER_SUBJECT: text("What the event is about: the record key"),
            wire.HEADER_CONTENT_TYPE: text("Payload media type", const=wire.CONTENT_TYPE),
            wire.HEADER_CORRELATION_ID: text("Id shared by every event of one business flow"),
            wire.HEADER_CAUSATION_ID: text("event_id of the event that caused this one"),
            "traceparent": text("W3C trace context of the emitting span"),
        },
        "required": [*wire.REQUIRED_HEADERS, wire.HEADER_TIME, wire.HEADER_SUBJECT],
    }


def _overview() -> str:
    rows = "\n".join(
        f"| `{topic.name}` | {topic.key} | {topic.producer} | {', '.join(topic.consumers)} "
        f"| {', '.join(event.__name__ for event in topic.events)} |"
        for topic in TOPICS
    )
    return (
        "Every event of the order management system. One topic per emitting service and "
        "major version; every event of one order shares a record key, so it stays in order "
        "on one partition. Values are JSON; headers follow the CloudEvents Kafka binding "
        "(binary mode). Within a major version, changes are additive and optional only.\n\n"
        "| topic | key | producer | consumers | events |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Each consumer group has a dead-letter topic `oms.deadletter.<group>.v1`."
    )


# --- checking and writing -------------------------------------------------------------


def stale_files(expected: dict[Path, str]) -> list[Path]:
    """Files whose committed text differs from `expected`, missing ones, and schemas of
    events that no longer exist."""
    differing = [
        path
        for path, text in expected.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    orphaned = [path for path in committed_schema_files() if path not in expected]
    return sorted(differing + orphaned)


def refusals(expected: dict[Path, str]) -> list[str]:
    """Why overwriting the committed schemas with `expected` would break consumers."""
    found = []
    for path in committed_schema_files():
        name = path.stem
        if path not in expected:
            found.append(f"{name}: the event was removed")
            continue
        old = json.loads(path.read_text(encoding="utf-8"))
        new = json.loads(expected[path])
        found.extend(f"{name}: {change}" for change in breaking_changes(old, new))
    return found


def write(expected: dict[Path, str]) -> list[Path]:
    written = []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    for path in committed_schema_files():
        if path not in expected:
            path.unlink()
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.export", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; fail if the export is stale"
    )
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="overwrite committed schemas even when the change is not backward compatible",
    )
    arguments = parser.parse_args(argv)
    expected = expected_export()

    if arguments.check:
        stale = stale_files(expected)
        if stale:
            _say(
                "The committed contract export differs from the models:",
                *(f"  {_relative(path)}" for path in stale),
                "Run `python -m contracts.export` and commit the result.",
            )
            return 1
        return 0

    problems = refusals(expected)
    if problems and not arguments.allow_breaking:
        _say(
            "Refusing to overwrite committed schemas with backward-incompatible changes:",
            *(f"  {problem}" for problem in problems),
            "Within a major version only new optional fields are allowed. A breaking change "
            "needs a new v2 event on a v2 topic; or pass --allow-breaking if nobody has "
            "consumed this version yet.",
        )
        return 1
    for path in write(expected):
        _say(f"wrote {_relative(path)}" if path.exists() else f"removed {_relative(path)}")
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _say(*lines: str) -> None:
    sys.stderr.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
