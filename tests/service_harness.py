"""Runs a service in the test's own event loop against the real broker and database,
in a topic namespace of its own, and reads back what it published."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import FastAPI

from contracts.base import Event
from contracts.wire import decode, encode, header_map
from services.kit.runtime import ServiceRuntime
from services.kit.topics import TopicNames
from tests.infrastructure import Infrastructure
from tests.kafka_tools import create_topics, publish, read_all


async def fresh_namespace(infrastructure: Infrastructure) -> TopicNames:
    """Every catalogue topic under a new prefix, so tests never see each other's events."""
    names = TopicNames(f"t{uuid.uuid4().hex[:10]}")
    await create_topics(infrastructure.kafka_bootstrap_servers, *names.all(), partitions=3)
    return names


def settings_environment(
    infrastructure: Infrastructure, names: TopicNames, database_url: str
) -> dict[str, Any]:
    """Keyword arguments every service's settings class accepts."""
    return {
        "kafka_bootstrap_servers": infrastructure.kafka_bootstrap_servers,
        "topic_namespace": names.namespace,
        "database_url": database_url,
        "http_port": 0,
        "log_json": False,
        "relay_idle_seconds": 0.1,
        "transient_retry_seconds": 5.0,
    }


@contextlib.asynccontextmanager
async def running_service(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    runtime: ServiceRuntime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://service"
        ) as client:
            yield client
    finally:
        await runtime.stop()


async def publish_events(
    infrastructure: Infrastructure, names: TopicNames, *events: Event, source: str = "/test"
) -> None:
    for event in events:
        record = encode(event, source=source)
        await publish(
            infrastructure.kafka_bootstrap_servers,
            names.of_event(type(event)),
            [(record.key, record.value, record.headers)],
        )


async def events_on(
    infrastructure: Infrastructure,
    names: TopicNames,
    topic: str,
    *,
    expect: int,
    where: Callable[[Event], bool] = lambda _event: True,
    timeout: float = 20.0,
) -> list[Event]:
    """The events on a catalogue topic (in the namespace) that satisfy `where`, in order
    per partition, once at least `expect` records are on the topic."""
    records = await read_all(
        infrastructure.kafka_bootstrap_servers,
        names.physical(topic),
        expect=expect,
        timeout=timeout,
    )
    events = [decode(header_map(record.headers), record.value) for record in records]
    return [event for event in events if where(event)]
