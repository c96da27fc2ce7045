"""Fuzzing the inbound topic against the running order service (in-process, a namespace
of its own, real Kafka and PostgreSQL).

Some 250 bad records go to the channel topic: random bytes, truncated JSON, wrong types,
unknown fields, missing or wrong headers, payloads over the size limit, unknown SKUs,
zero and negative quantities, float money, bad currencies, totals that do not add up,
and a bounded, derandomized set of hypothesis mutations of a valid OrderSubmitted. Each
must end as exactly one OrderRejected (matched by its external order id) or one record
on the order group's dead-letter topic (matched by its offset); then valid orders sent
after them must be placed: the consumer kept going. Bounded to run in well under a
minute."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.events.channel import OrderSubmitted
from contracts.events.order import OrderPlaced, OrderRejected
from contracts.wire import (
    HEADER_ID,
    HEADER_SPECVERSION,
    HEADER_TYPE,
    MAX_EVENT_BYTES,
    decode,
    encode,
    header_map,
)
from services.kit import dead_letters
from tests.kafka_tools import eventually
from tests.order.scene import Scene, order_fields, submitted

pytestmark = pytest.mark.integration

MUTATIONS = 150
RANDOM_BYTES = 20
TRUNCATIONS = 10
VALID_AFTERWARDS = 5
PRODUCER_MAX_REQUEST_BYTES = 3 * 1024 * 1024

Headers = list[tuple[str, bytes]]
Outcome = Literal["rejected", "dead_letter"]


@dataclass
class Fuzz:
    label: str
    value: bytes
    headers: Headers
    key: bytes | None
    expect: Outcome | None
    """None: either outcome will do (but exactly one)."""
    external_order_id: str | None = None
    reason_code: str | None = None
    partition: int = -1
    offset: int = -1
    outcomes: list[str] = field(default_factory=list)


class Fuzzer:
    """Builds the bad records, each a variation of one valid submission."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.count = 0
        self.cases: list[Fuzz] = []

    def external_id(self) -> str:
        self.count += 1
        return f"FZ-{self.run}-{self.count}"

    def valid(self, lines: dict[str, int] | None = None) -> tuple[OrderSubmitted, dict[str, Any]]:
        order = submitted(order_fields(lines, external_order_id=self.external_id()))
        return order, json.loads(order.model_dump_json())

    def add(
        self,
        label: str,
        payload: dict[str, Any] | bytes | Any,
        *,
        expect: Outcome | None,
        reason_code: str | None = None,
        headers: Callable[[Headers], Headers] = lambda headers: headers,
        order: OrderSubmitted | None = None,
    ) -> None:
        order = order or self.valid()[0]
        record = encode(order, source="/fuzz")
        value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        identity = (
            payload.get("external_order_id")
            if isinstance(payload, dict) and expect == "rejected"
            else None
        )
        self.cases.append(
            Fuzz(
                label=label,
                value=value,
                headers=headers(list(record.headers)),
                key=record.key,
                expect=expect,
                external_order_id=identity if isinstance(identity, str) else None,
                reason_code=reason_code,
            )
        )

    def mutate(self, label: str, change: Callable[[dict[str, Any]], None], **kwargs: Any) -> None:
        order, payload = self.valid()
        change(payload)
        self.add(label, payload, order=order, **kwargs)


def without(*names: str) -> Callable[[Headers], Headers]:
    return lambda headers: [(name, value) for name, value in headers if name not in names]


def replacing(name: str, value: bytes) -> Callable[[Headers], Headers]:
    return lambda headers: [*without(name)(headers), (name, value)]


def set_path(payload: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def replace_at(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda payload: set_path(payload, path, value)


def drop(*names: str) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        for name in names:
            del payload[name]

    return change


def deterministic_cases(fuzzer: Fuzzer) -> None:
    m = fuzzer.mutate
    rejected: Outcome = "rejected"
    dead: Outcome = "dead_letter"
    contract = "contract_violation"

    # Valid JSON of the wrong types, the order still identifiable: OrderRejected.
    for label, path, value in [
        ("lines as an object", ("lines",), {"sku": "SKU-A"}),
        ("quantity as text", ("lines", 0, "quantity"), "2"),
        ("total as text", ("total",), "14.90 EUR"),
        ("customer as a list", ("customer",), ["cus_1"]),
        ("submitted_at as a number", ("submitted_at",), 1_700_000_000),
        ("shipping speed as a number", ("shipping_speed",), 5),
        ("notes as a list", ("notes",), ["a"]),
        ("currency as a number", ("currency",), 978),
        ("event id not a uuid", ("event_id",), "not-a-uuid"),
        ("address as text", ("shipping_address",), "12 rue de la Paix, Paris"),
    ]:
        m(label, replace_at(path, value), expect=rejected)
    # ... and unknown fields.
    m("unknown top-level field", lambda p: p.update(gift_wrap=True), expect=rejected)
    m(
        "unknown nested field",
        lambda p: p["customer"].update(loyalty_tier="gold"),
        expect=rejected,
    )
    # The identity itself broken: nobody to reject, a dead letter.
    m("external id a number", lambda p: p.update(external_order_id=123), expect=dead)
    m("channel null", lambda p: p.update(channel=None), expect=dead)
    m("channel with a colon", lambda p: p.update(channel="web:shop"), expect=dead)
    m("no identity at all", drop("channel", "external_order_id"), expect=dead)
    for label, body in [
        ("a JSON list", b"[1, 2, 3]"),
        ("a JSON string", b'"an order"'),
        ("a JSON number", b"42"),
        ("JSON null", b"null"),
        ("an empty value", b""),
    ]:
        fuzzer.add(label, body, expect=dead)

    # Missing and wrong headers on a valid payload: rejected with the decoder's reason.
    for label, headers in [
        ("no headers at all", lambda _headers: []),
        ("no ce_type", without(HEADER_TYPE)),
        ("no ce_id", without(HEADER_ID)),
        ("unknown ce_type", replacing(HEADER_TYPE, b"oms.Nope.v1")),
        ("another event's ce_type", replacing(HEADER_TYPE, b"oms.OrderPlaced.v1")),
        ("ce_type of another topic", replacing(HEADER_TYPE, b"oms.StockReserved.v1")),
        ("old specversion", replacing(HEADER_SPECVERSION, b"0.3")),
        ("ce_id not the event id", replacing(HEADER_ID, str(uuid.uuid4()).encode())),
    ]:
        order, payload = fuzzer.valid()
        fuzzer.add(
            label, payload, order=order, headers=headers, expect=rejected, reason_code=contract
        )

    # Business rules: identifiable, contract-valid, rejected for what is wrong.
    order, payload = fuzzer.valid({"SKU-A": 1, "SKU-NEVER": 1})
    fuzzer.add("unknown sku", payload, order=order, expect=rejected, reason_code="unknown_sku")
    order, payload = fuzzer.valid({"SKU-OLD": 1})
    fuzzer.add("retired sku", payload, order=order, expect=rejected, reason_code="unknown_sku")
    m("zero quantity", lambda p: set_path(p, ("lines", 0, "quantity"), 0), expect=rejected)
    m("negative quantity", lambda p: set_path(p, ("lines", 1, "quantity"), -3), expect=rejected)
    m(
        "float money",
        lambda p: set_path(p, ("total", "amount_minor"), 14.9),
        expect=rejected,
        reason_code=contract,
    )
    m(
        "whole float money",
        lambda p: set_path(p, ("subtotal", "amount_minor"), 3000.0),
        expect=rejected,
        reason_code=contract,
    )
    m(
        "negative money",
        lambda p: set_path(p, ("shipping_charge", "amount_minor"), -1),
        expect=rejected,
    )
    m("unknown currency", lambda p: p.update(currency="XYZ"), expect=rejected, reason_code=contract)
    m("lower-case currency", lambda p: p.update(currency="eur"), expect=rejected)
    m(
        "line in another currency",
        lambda p: set_path(p, ("lines", 0, "unit_price", "currency"), "USD"),
        expect=rejected,
        reason_code="currency_mismatch",
    )
    m(
        "total not subtotal plus shipping",
        lambda p: set_path(p, ("total", "amount_minor"), 1),
        expect=rejected,
        reason_code="total_mismatch",
    )
    m(
        "line total not price times quantity",
        lambda p: set_path(p, ("lines", 0, "line_total", "amount_minor"), 7),
        expect=rejected,
        reason_code="line_total_mismatch",
    )
    m(
        "duplicate line ids",
        lambda p: set_path(p, ("lines", 1, "line_id"), p["lines"][0]["line_id"]),
        expect=rejected,
        reason_code="duplicate_line",
    )
    m(
        "undeliverable country",
        lambda p: p["shipping_address"].update(country="US", postal_code="10001"),
        expect=rejected,
        reason_code="invalid_address",
    )
    m(
        "NUL character in a name",
        lambda p: p["customer"].update(name="Ada\x00Lovelace"),
        expect=rejected,
        reason_code=contract,
    )

    # Over the 512 KiB limit: never parsed, dead-lettered (copied, or by reference when
    # too big for the service's producer to copy).
    for label, size in [("just over the limit", MAX_EVENT_BYTES + 1), ("1.5 MiB", 3 << 19)]:
        order, payload = fuzzer.valid()
        payload["notes"] = "x" * size
        fuzzer.add(label, payload, order=order, expect=dead)


def json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=6), children, max_size=3)
        ),
        max_leaves=6,
    )


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths_of(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths_of(item, (*prefix, index)))
    return found


IDENTITY = {("channel",), ("external_order_id",)}


def breaks_the_contract(payload: dict[str, Any]) -> bool:
    try:
        OrderSubmitted.model_validate_json(json.dumps(payload))
    except ValidationError:
        return True
    return False


def generated_cases(fuzzer: Fuzzer) -> None:
    """Random bytes, truncated JSON and mutations of a valid order, from hypothesis,
    derandomized so that CI sees the same records every run."""
    _order, template = fuzzer.valid()
    paths = [path for path in paths_of(template) if path not in IDENTITY]
    template_bytes = json.dumps(template).encode()
    mutations: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    cuts: list[int] = []

    def bounded(examples: int) -> settings:
        return settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )

    @bounded(MUTATIONS)
    @given(
        path=st.sampled_from(paths),
        operation=st.sampled_from(["replace", "delete", "insert"]),
        value=json_values(),
        new_key=st.text(min_size=1, max_size=8),
    )
    def mutation(path: tuple[Any, ...], operation: str, value: Any, new_key: str) -> None:
        payload = copy.deepcopy(template)
        parent: Any = payload
        for step in path[:-1]:
            parent = parent[step]
        if operation == "delete":
            del parent[path[-1]]
        elif operation == "insert":
            target = parent[path[-1]]
            assume(isinstance(target, dict))
            target[f"x_{new_key}"] = value
        else:
            parent[path[-1]] = value
        assume(breaks_the_contract(payload))
        mutations.append(payload)

    @bounded(RANDOM_BYTES)
    @given(st.binary(max_size=2048))
    def random_bytes(blob: bytes) -> None:
        blobs.append(blob)

    @bounded(TRUNCATIONS)
    @given(st.integers(min_value=1, max_value=len(template_bytes) - 1))
    def truncation(cut: int) -> None:
        cuts.append(cut)

    mutation()
    random_bytes()
    truncation()
    for index, payload in enumerate(mutations[:MUTATIONS]):
        order, _ = fuzzer.valid()
        payload = {**payload, "external_order_id": order.external_order_id}
        fuzzer.add(f"mutation {index}", payload, order=order, expect="rejected")
    for blob in blobs:
        fuzzer.add("random bytes", blob, expect="dead_letter")
    for cut in cuts:
        order, payload = fuzzer.valid()
        fuzzer.add("truncated JSON", json.dumps(payload).encode()[:cut], expect="dead_letter")


async def send(scene: Scene, cases: list[Fuzz]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=scene.infrastructure.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_request_size=PRODUCER_MAX_REQUEST_BYTES,
    )
    await producer.start()
    topic = scene.names.of_event(OrderSubmitted)
    try:
        for case in cases:
            sent = await producer.send_and_wait(
                topic, value=case.value, key=case.key, headers=case.headers
            )
            case.partition, case.offset = sent.partition, sent.offset
    finally:
        await producer.stop()


async def outcomes(scene: Scene, cases: list[Fuzz]) -> None:
    """Marks each case with what became of it, from the order and dead-letter topics."""
    channel_topic = scene.names.of_event(OrderSubmitted).encode()
    rejections: dict[str, list[OrderRejected]] = {}
    for record in await scene.records("oms.order.v1"):
        event = decode(header_map(record.headers), record.value)
        if isinstance(event, OrderRejected):
            rejections.setdefault(event.external_order_id, []).append(event)
    letters: dict[tuple[int, int], int] = {}
    for record in await scene.records("oms.deadletter.order.v1"):
        headers = dict(record.headers)
        if headers.get(dead_letters.SOURCE_TOPIC) == channel_topic:
            position = (
                int(headers[dead_letters.SOURCE_PARTITION]),
                int(headers[dead_letters.SOURCE_OFFSET]),
            )
            letters[position] = letters.get(position, 0) + 1
    for case in cases:
        case.outcomes = [
            *(
                f"rejected:{','.join(sorted({r.code.value for r in event.reasons}))}"
                for event in rejections.get(case.external_order_id or "", [])
            ),
            *(["dead_letter"] * letters.get((case.partition, case.offset), 0)),
        ]


async def test_every_bad_record_is_rejected_or_dead_lettered_and_valid_orders_follow(
    scene: Scene,
) -> None:
    started = time.monotonic()
    fuzzer = Fuzzer()
    deterministic_cases(fuzzer)
    generated_cases(fuzzer)
    cases = fuzzer.cases
    assert 200 <= len(cases) <= 300, len(cases)

    await send(scene, cases)
    valid = [fuzzer.valid()[0] for _ in range(VALID_AFTERWARDS)]
    await scene.publish(*valid)

    async def all_settled() -> bool:
        await outcomes(scene, cases)
        return all(case.outcomes for case in cases)

    try:
        await eventually(all_settled, timeout=40, interval=1.0)
    except AssertionError:
        unsettled = [
            (case.label, case.partition, case.offset) for case in cases if not case.outcomes
        ]
        raise AssertionError(
            f"{len(unsettled)} records came to nothing: {unsettled[:10]}"
        ) from None

    assert [(c.label, c.outcomes) for c in cases if len(c.outcomes) != 1] == []
    rejected = [case for case in cases if case.outcomes[0].startswith("rejected")]
    dead_lettered = [case for case in cases if case.outcomes == ["dead_letter"]]
    assert len(rejected) + len(dead_lettered) == len(cases)
    assert [
        (case.label, case.outcomes)
        for case in cases
        if case.expect is not None and not case.outcomes[0].startswith(case.expect)
    ] == []
    assert [
        (case.label, case.outcomes)
        for case in cases
        if case.reason_code is not None and case.reason_code not in case.outcomes[0]
    ] == []
    placed = await scene.wait_for(
        OrderPlaced, lambda event: event.external_order_id in {v.external_order_id for v in valid}
    )
    assert len(placed) == VALID_AFTERWARDS, "the consumer kept going"
    await by_reference_letter_of_the_largest(scene, cases)
    assert time.monotonic() - started < 60


async def by_reference_letter_of_the_largest(scene: Scene, cases: list[Fuzz]) -> None:
    """The 1.5 MiB record is more than the service's producer sends: its dead letter
    points at it instead of copying it."""
    [largest] = [case for case in cases if case.label == "1.5 MiB"]
    for record in await scene.records("oms.deadletter.order.v1"):
        headers = dict(record.headers)
        if (
            headers.get(dead_letters.SOURCE_OFFSET) == str(largest.offset).encode()
            and headers.get(dead_letters.SOURCE_PARTITION) == str(largest.partition).encode()
        ):
            assert record.value is None
            assert headers[dead_letters.VALUE_OMITTED] == str(len(largest.value)).encode()
            return
    raise AssertionError("no dead letter for the 1.5 MiB record")


async def test_a_header_that_is_not_utf8_is_rejected_or_dead_lettered(scene: Scene) -> None:
    fuzzer = Fuzzer()
    order, payload = fuzzer.valid()
    fuzzer.add(
        "undecodable header bytes",
        payload,
        order=order,
        headers=replacing(HEADER_TYPE, b"\xff\xfe"),
        expect="rejected",
    )
    [case] = fuzzer.cases
    await send(scene, [case])

    async def settled() -> bool:
        await outcomes(scene, [case])
        return bool(case.outcomes)

    await eventually(settled, timeout=8, interval=1.0)
