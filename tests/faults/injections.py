"""Faults carried by records rather than processes: copies of events already consumed,
re-published byte for byte, and poison records that no consumer may choke on."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.base import Event
from contracts.catalogue import topics_consumed_by
from contracts.events.channel import OrderSubmitted
from contracts.events.order import OrderRejected
from contracts.events.returns import ReturnReasonCode, ReturnRequested, ReturnRequestLine
from contracts.wire import HEADER_TYPE, InvalidEvent, decode, encode, header_map
from services.kit import dead_letters
from tests.e2e.flow import channel_order
from tests.faults.load import ChannelPublisher
from tests.faults.readers import may_read, must_read
from tests.faults.system import FaultySystem
from tests.kafka_tools import read_to_end

CHANNEL_TOPIC = "oms.channel.orders.v1"
RETURNS_TOPIC = "oms.returns.v1"
REPLAYED_TOPICS = (
    CHANNEL_TOPIC,
    "oms.order.v1",
    "oms.inventory.v1",
    "oms.fulfilment.v1",
    "oms.returns.v1",
)
COPYABLE_OVERSIZE = 600 * 1024
"""Over the 512 KiB event limit, yet small enough to be copied into a dead letter."""
UNCOPYABLE_OVERSIZE = 3 << 19
"""1.5 MiB: more than a service's producer sends, so it is dead-lettered by reference."""
POISON_PRODUCER_MAX_BYTES = 3 * 1024 * 1024

Headers = list[tuple[str, bytes]]


def consumers_of(topic: str) -> tuple[str, ...]:
    return tuple(
        group
        for group in ("order", "inventory", "fulfilment", "returns", "notification")
        if topic in topics_consumed_by(group)
    )


async def publish_duplicates(system: FaultySystem, count: int, seed: int) -> int:
    """Re-publishes `count` valid records already on the namespace topics (most of them
    consumed already), unchanged — key, value, headers and partition. Returns how many."""
    candidates: list[tuple[str, int, bytes | None, bytes, Headers]] = []
    for topic in REPLAYED_TOPICS:
        physical = system.names.physical(topic)
        for record in await read_to_end(system.bootstrap, physical):
            try:
                decode(header_map(record.headers), record.value)
            except InvalidEvent:
                continue  # poison has its own accounting
            candidates.append(
                (physical, record.partition, record.key, record.value, list(record.headers))
            )
    chosen = random.Random(seed).sample(candidates, min(count, len(candidates)))
    publisher = ChannelPublisher(system.bootstrap)
    try:
        for physical, partition, key, value, headers in chosen:
            await publisher.send(
                physical, key=key, value=value, headers=headers, partition=partition
            )
    finally:
        await publisher.close()
    system.faults.record("duplicate_record", "topics", len(chosen))
    return len(chosen)


@dataclass
class PoisonRecord:
    label: str
    topic: str
    """logical (catalogue) topic name"""
    key: bytes | None
    value: bytes
    headers: Headers
    external_order_id: str | None = None
    """on the channel topic, the id an OrderRejected would carry"""
    partition: int = -1
    offset: int = -1
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    """consumer group → what became of the record there: dead_letter, dead_letter_by_
    reference, or rejected (OrderRejected). Exactly one for each group that must read it;
    none or one for a group that may; none for a group that skips its type unread."""

    @property
    def event_type(self) -> str | None:
        value = dict(self.headers).get(HEADER_TYPE)
        return value.decode("utf-8", "replace") if value is not None else None

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups that must settle it: those that read every record of its type."""
        return tuple(
            group for group in consumers_of(self.topic) if must_read(group, self.event_type)
        )

    @property
    def settled(self) -> bool:
        return all(self.outcomes.get(group) for group in self.groups)

    @property
    def exactly_once(self) -> bool:
        """Once where it must be read, at most once where it may, never elsewhere."""
        for group in consumers_of(self.topic):
            count = len(self.outcomes.get(group, []))
            if group in self.groups:
                allowed = count == 1
            elif may_read(group, self.event_type):
                allowed = count <= 1
            else:
                allowed = count == 0
            if not allowed:
                return False
        return True


def _channel_payload(
    run_id: str, label: str, lines: list[tuple[str, int]]
) -> tuple[OrderSubmitted, dict[str, object]]:
    external = f"poison-{run_id}-{label.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
    order = channel_order(lines, external_order_id=external)
    return order, json.loads(order.model_dump_json())


def poison_records(run_id: str, known_sku: str) -> list[PoisonRecord]:
    """Every kind of bad record, on the channel topic and on the returns topic."""
    poison: list[PoisonRecord] = []

    def channel(
        label: str,
        payload: dict[str, object] | bytes,
        order: OrderSubmitted,
        headers: Headers | None = None,
    ) -> None:
        record = encode(order, source="/faults/poison")
        value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        poison.append(
            PoisonRecord(
                label,
                CHANNEL_TOPIC,
                record.key,
                value,
                record.headers if headers is None else headers,
                external_order_id=order.external_order_id,
            )
        )

    order, _ = _channel_payload(run_id, "not-json", [(known_sku, 1)])
    channel("not JSON", b"\xff\xfe not json {{{" + uuid.uuid4().bytes, order)
    order, payload = _channel_payload(run_id, "wrong-types", [(known_sku, 1)])
    payload["lines"] = [{"sku": 42, "quantity": "three"}]
    payload["total"] = "a lot"
    channel("wrong types", payload, order)
    order, payload = _channel_payload(run_id, "unknown-type", [(known_sku, 1)])
    channel(
        "unknown ce_type",
        payload,
        order,
        headers=[
            (name, b"oms.OrderTeleported.v1" if name == HEADER_TYPE else value)
            for name, value in encode(order, source="/faults/poison").headers
        ],
    )
    order, payload = _channel_payload(run_id, "no-headers", [(known_sku, 1)])
    channel("missing headers", payload, order, headers=[])
    order, payload = _channel_payload(run_id, "copyable-oversize", [(known_sku, 1)])
    payload["notes"] = "x" * COPYABLE_OVERSIZE
    channel("600 KiB payload", payload, order)
    order, payload = _channel_payload(run_id, "uncopyable-oversize", [(known_sku, 1)])
    payload["notes"] = "x" * UNCOPYABLE_OVERSIZE
    channel("1.5 MiB payload", payload, order)
    order, payload = _channel_payload(run_id, "unknown-sku", [(f"NOPE-{run_id}", 1)])
    channel("unknown SKU", payload, order)
    order, payload = _channel_payload(run_id, "negative-quantity", [(known_sku, 1)])
    lines = payload["lines"]
    assert isinstance(lines, list)
    lines[0]["quantity"] = -2
    channel("negative quantity", payload, order)

    def returns(
        label: str,
        mutate: Callable[[dict[str, Any]], object] | None = None,
        *,
        headers: Headers | None = None,
        value: bytes | None = None,
    ) -> None:
        event = _returns_event(run_id, known_sku)
        record = encode(event, source="/faults/poison")
        payload = json.loads(event.model_dump_json())
        if mutate is not None:
            mutate(payload)
        poison.append(
            PoisonRecord(
                label,
                RETURNS_TOPIC,
                record.key,
                value if value is not None else json.dumps(payload).encode(),
                record.headers if headers is None else headers,
            )
        )

    returns("not JSON", value=b"\x00\x01 definitely not json")
    returns("wrong types", lambda p: p.update(lines=[{"sku": 7, "quantity": "one"}]))
    returns(
        "unknown ce_type",
        headers=[
            (n, b"oms.ReturnTeleported.v1" if n == HEADER_TYPE else v)
            for n, v in encode(_returns_event(run_id, known_sku), source="/x").headers
        ],
    )
    returns("missing headers", headers=[])
    returns("600 KiB payload", lambda p: p.update(padding="x" * COPYABLE_OVERSIZE))
    returns("1.5 MiB payload", lambda p: p.update(padding="x" * UNCOPYABLE_OVERSIZE))
    returns("negative quantity", lambda p: p["lines"][0].update(quantity=-1))
    return poison


def _returns_event(run_id: str, sku: str) -> Event:
    return ReturnRequested(
        order_id=f"ord-poison-{run_id}-{uuid.uuid4().hex[:6]}",
        return_id=f"rma-poison-{uuid.uuid4().hex[:6]}",
        lines=(ReturnRequestLine(sku=sku, quantity=1, reason_code=ReturnReasonCode.DAMAGED),),
        requested_at=datetime.now(UTC),
    )


async def publish_poison(system: FaultySystem, poison: list[PoisonRecord]) -> None:
    publisher = ChannelPublisher(system.bootstrap, max_request_size=POISON_PRODUCER_MAX_BYTES)
    try:
        for record in poison:
            record.partition, record.offset, _ = await publisher.send(
                system.names.physical(record.topic),
                key=record.key,
                value=record.value,
                headers=record.headers,
            )
    finally:
        await publisher.close()
    system.faults.record("poison_record", "topics", len(poison))


async def settle_poison(system: FaultySystem, poison: list[PoisonRecord]) -> int:
    """Fills each record's outcomes from the dead-letter topics and the order topic;
    returns how many dead letters the namespace holds in all."""
    for record in poison:
        record.outcomes = {}
    by_position = {(system.names.physical(r.topic), r.partition, r.offset): r for r in poison}
    total = 0
    for group in ("order", "inventory", "fulfilment", "returns", "notification"):
        letters = await read_to_end(system.bootstrap, system.names.dead_letters(group))
        total += len(letters)
        for letter in letters:
            headers = dict(letter.headers)
            position = (
                headers.get(dead_letters.SOURCE_TOPIC, b"").decode(),
                int(headers.get(dead_letters.SOURCE_PARTITION, b"-1")),
                int(headers.get(dead_letters.SOURCE_OFFSET, b"-1")),
            )
            poisoned = by_position.get(position)
            if poisoned is None:
                continue
            kind = (
                "dead_letter_by_reference"
                if dead_letters.VALUE_OMITTED in headers
                else "dead_letter"
            )
            poisoned.outcomes.setdefault(group, []).append(kind)
    by_external = {r.external_order_id: r for r in poison if r.external_order_id}
    for letter in await read_to_end(system.bootstrap, system.names.physical("oms.order.v1")):
        try:
            event = decode(header_map(letter.headers), letter.value)
        except InvalidEvent:
            continue
        if isinstance(event, OrderRejected) and event.external_order_id in by_external:
            by_external[event.external_order_id].outcomes.setdefault("order", []).append("rejected")
    return total
