"""What the benchmark sees of the system from outside, on Kafka only: when each step of
each order was published, read from the CloudEvents headers of the records that show it,
and the lag of the services' consumer groups (committed offsets against end offsets)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench.analysis import LagSample
from bench.orders import phase_of
from contracts.base import Event
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.inventory import StockReservationFailed, StockReserved
from contracts.events.notification import NotificationSent
from contracts.events.order import OrderPlaced, OrderRejected
from contracts.wire import (
    HEADER_CAUSATION_ID,
    HEADER_CORRELATION_ID,
    HEADER_ID,
    HEADER_SUBJECT,
    HEADER_TYPE,
)
from services.kit.topics import TopicNames

# The steps of one order's flow, by the event that shows each.
SUBMITTED = "submitted"
PLACED = "placed"
RESERVED = "reserved"
SHIPPED = "shipped"
DELIVERED = "delivered"
NOTIFIED = "notified"
"""The customer's e-mail about the delivery went out: the last step of the flow."""
COMPLETED = "completed"
"""Delivered and notified, whichever came last."""
HOPS = (
    ("submitted_to_placed", SUBMITTED, PLACED),
    ("placed_to_reserved", PLACED, RESERVED),
    ("reserved_to_shipped", RESERVED, SHIPPED),
    ("shipped_to_delivered", SHIPPED, DELIVERED),
    ("delivered_to_notified", DELIVERED, NOTIFIED),
    ("whole_flow", SUBMITTED, COMPLETED),
)
"""(name, from step, to step) of every latency reported."""
OBSERVED_EVENTS: tuple[type[Event], ...] = (
    OrderPlaced,
    OrderRejected,
    StockReserved,
    StockReservationFailed,
    Shipped,
    Delivered,
    NotificationSent,
)
"""The events that show a step of an order's flow (or its end by failure): only their
topics are read, and of those only their records."""


def _type_of(event: type[Event]) -> bytes:
    return event.event_type().encode()


STEP_OF_EVENT = {_type_of(StockReserved): RESERVED, _type_of(Shipped): SHIPPED}
"""Events that are a step of the order named by their `ce_subject`, and nothing more."""
ORDER_PLACED = _type_of(OrderPlaced)
ORDER_REJECTED = _type_of(OrderRejected)
RESERVATION_FAILED = _type_of(StockReservationFailed)
DELIVERED_EVENT = _type_of(Delivered)
NOTIFICATION_SENT = _type_of(NotificationSent)


@dataclass
class OrderSteps:
    """When each step of one order was published (record timestamps, wall-clock seconds);
    the first time counts, so a redelivered duplicate changes nothing."""

    at: dict[str, float] = field(default_factory=dict)
    deliveries: set[str] = field(default_factory=set)
    """ids of the order's Delivered events"""
    notices: dict[str, float] = field(default_factory=dict)
    """e-mails sent about the order whose cause is not known to be a delivery (yet):
    cause event id → when the first was sent"""

    def record(self, step: str, at: float) -> None:
        if step not in self.at or at < self.at[step]:
            self.at[step] = at

    @property
    def completed_at(self) -> float | None:
        if DELIVERED in self.at and NOTIFIED in self.at:
            return max(self.at[DELIVERED], self.at[NOTIFIED])
        return None


@dataclass
class PhaseCounts:
    submitted: int = 0
    completed: int = 0
    failed: int = 0


@dataclass
class FlowLedger:
    """Every order of the run: its due time (from the sender) and its steps (from the
    observer), joined by the order id that OrderPlaced gives to the external order id."""

    due: dict[str, float] = field(default_factory=dict)
    """external order id → due time (wall-clock seconds)"""
    order_ids: dict[str, str] = field(default_factory=dict)
    """external order id → order id"""
    external_ids: dict[str, str] = field(default_factory=dict)
    steps: dict[str, OrderSteps] = field(default_factory=dict)
    """order id → its steps"""
    failed: set[str] = field(default_factory=set)
    """external order ids rejected, or order ids whose reservation failed"""
    counts: dict[str, PhaseCounts] = field(default_factory=dict)
    strangers: int = 0
    """orders placed or rejected under an external order id the run never submitted"""
    _counted: set[str] = field(default_factory=set)

    def submitted(self, external_id: str, due_at: float) -> None:
        self.due[external_id] = due_at
        self._phase(external_id).submitted += 1

    def _phase(self, external_id: str) -> PhaseCounts:
        return self.counts.setdefault(phase_of(external_id), PhaseCounts())

    def placed(self, order_id: str, external_id: str, at: float) -> None:
        if external_id not in self.due:
            self.strangers += 1
            return
        self.order_ids[external_id] = order_id
        self.external_ids[order_id] = external_id
        self.step(order_id, PLACED, at)

    def rejected(self, external_id: str) -> None:
        if external_id not in self.due:
            self.strangers += 1
        elif external_id not in self.failed:
            self.failed.add(external_id)
            self._phase(external_id).failed += 1

    def reservation_failed(self, order_id: str) -> None:
        self.failed.add(order_id)
        self._count(order_id)

    def step(self, order_id: str, step: str, at: float) -> None:
        self._steps(order_id).record(step, at)
        self._count(order_id)

    def delivered(self, order_id: str, event_id: str, at: float) -> None:
        """A Delivered event of the order; an e-mail already seen about it is the
        customer's notice of the delivery."""
        steps = self._steps(order_id)
        steps.deliveries.add(event_id)
        steps.record(DELIVERED, at)
        notice = steps.notices.pop(event_id, None)
        if notice is not None:
            steps.record(NOTIFIED, notice)
        self._count(order_id)

    def notified(self, order_id: str, cause_event_id: str, at: float) -> None:
        """An e-mail about the order went out, caused by the event `cause_event_id`: the
        notice of its delivery when that event is one of its Delivered events. Topics
        interleave, so the e-mail may be seen before the delivery: it waits for it."""
        steps = self._steps(order_id)
        if cause_event_id in steps.deliveries:
            self.step(order_id, NOTIFIED, at)
        elif order_id not in self._counted:
            first = steps.notices.get(cause_event_id)
            if first is None or at < first:
                steps.notices[cause_event_id] = at

    def _steps(self, order_id: str) -> OrderSteps:
        return self.steps.setdefault(order_id, OrderSteps())

    def _count(self, order_id: str) -> None:
        """Counts an order once it is finished, for progress and for knowing when a
        phase has drained (steps may be seen before OrderPlaced: topics interleave)."""
        external_id = self.external_ids.get(order_id)
        if external_id is None or order_id in self._counted:
            return
        if order_id in self.failed:
            self._counted.add(order_id)
            self._phase(external_id).failed += 1
        elif self.steps[order_id].completed_at is not None:
            self._counted.add(order_id)
            self.steps[order_id].notices.clear()
            self._phase(external_id).completed += 1

    def phase(self, name: str) -> PhaseCounts:
        return self.counts.get(name, PhaseCounts())

    def finished(self, name: str) -> bool:
        counts = self.phase(name)
        return counts.completed + counts.failed >= counts.submitted

    def flows(self, name: str) -> list[dict[str, float]]:
        """The phase's orders in submission order: when each step happened (wall-clock
        seconds), from `submitted` (its due time) to `completed`."""
        flows = []
        for external_id, due_at in sorted(self.due.items()):
            if phase_of(external_id) != name:
                continue
            steps = self.steps.get(self.order_ids.get(external_id, ""))
            flow = {SUBMITTED: due_at, **(steps.at if steps else {})}
            completed_at = steps.completed_at if steps else None
            if completed_at is not None:
                flow[COMPLETED] = completed_at
            flows.append(flow)
        return flows


class FlowObserver:
    """Feeds the ledger from the topics of the events that show an order's steps, reading
    only each record's CloudEvents headers and timestamp, never its value:

    - `ce_type` says which event it is, `ce_subject` which order (the order id);
    - OrderPlaced and OrderRejected name the external order id in `ce_correlationid`:
      the sender sets it on each submission and the order service keeps it;
    - a NotificationSent is the customer's notice of the delivery when its
      `ce_causationid` is the `ce_id` of one of the order's Delivered events.
    """

    def __init__(self, bootstrap: str, names: TopicNames, ledger: FlowLedger) -> None:
        self._bootstrap = bootstrap
        self.topics = tuple(sorted({names.of_event(event) for event in OBSERVED_EVENTS}))
        self.ledger = ledger

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FlowObserver]:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # Few, large fetches: the broker answers once it holds 256 KiB for us, or
            # after 500 ms (the delay only postpones noticing that a phase has drained;
            # every step is timed by its record's own timestamp).
            fetch_min_bytes=256 * 1024,
            fetch_max_wait_ms=500,
        )
        await consumer.start()
        task = asyncio.create_task(self._consume(consumer), name="flow-observer")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    self.observe(record.headers, record.timestamp)

    def observe(self, headers: Sequence[tuple[str, bytes]], timestamp_ms: int) -> None:
        """One record: what its headers show, at its timestamp."""
        attributes = dict(headers)
        kind = attributes.get(HEADER_TYPE)
        subject = attributes.get(HEADER_SUBJECT)
        if kind is None or subject is None:
            return
        at = timestamp_ms / 1000.0
        ledger = self.ledger
        step = STEP_OF_EVENT.get(kind)
        if step is not None:
            ledger.step(subject.decode(), step, at)
        elif kind == DELIVERED_EVENT:
            if (event_id := attributes.get(HEADER_ID)) is not None:
                ledger.delivered(subject.decode(), event_id.decode(), at)
        elif kind == NOTIFICATION_SENT:
            if (cause := attributes.get(HEADER_CAUSATION_ID)) is not None:
                ledger.notified(subject.decode(), cause.decode(), at)
        elif kind == ORDER_PLACED:
            if (external_id := attributes.get(HEADER_CORRELATION_ID)) is not None:
                ledger.placed(subject.decode(), external_id.decode(), at)
        elif kind == ORDER_REJECTED:
            if (external_id := attributes.get(HEADER_CORRELATION_ID)) is not None:
                ledger.rejected(external_id.decode())
        elif kind == RESERVATION_FAILED:
            ledger.reservation_failed(subject.decode())


def per_topic(ends: Mapping[TopicPartition, int]) -> dict[str, int]:
    """Records on each topic so far, from the end offsets of its partitions."""
    totals: dict[str, int] = {}
    for partition, end in ends.items():
        totals[partition.topic] = totals.get(partition.topic, 0) + end
    return totals


@dataclass(frozen=True)
class GroupLag:
    at: float
    """seconds (monotonic)"""
    arrived: dict[str, int]
    """per service: records on the partitions it consumes (sum of end offsets)"""
    lag: dict[str, int]
    """per service: records its consumer group has not committed yet"""

    def total(self) -> LagSample:
        return LagSample(self.at, sum(self.arrived.values()), sum(self.lag.values()))

    def of(self, service: str) -> LagSample:
        return LagSample(self.at, self.arrived[service], self.lag[service])


class LagMonitor:
    """Reads the consumer lag of each service's group once a second, keeping every reading."""

    def __init__(
        self,
        bootstrap: str,
        names: TopicNames,
        services: Iterable[str],
        *,
        partitions: int,
        interval: float = 1.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._names = names
        self._services = tuple(services)
        self._interval = interval
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        # The run created every topic, so it knows their partitions.
        self._partitions = {
            topic: [TopicPartition(topic, partition) for partition in range(partitions)]
            for topic in names.all()
        }
        self.samples: list[GroupLag] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LagMonitor]:
        await self._admin.start()
        await self._consumer.start()
        try:
            task = asyncio.create_task(self._sample_forever(), name="lag-monitor")
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await self._consumer.stop()
            await self._admin.close()

    async def partition_ends(self) -> dict[TopicPartition, int]:
        """The end offset of every partition of the run's topics."""
        everything = [tp for partitions in self._partitions.values() for tp in partitions]
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(everything)
        return ends

    async def read(self) -> GroupLag:
        everything = [tp for partitions in self._partitions.values() for tp in partitions]
        ends = await self._consumer.end_offsets(everything)
        arrived: dict[str, int] = {}
        lag: dict[str, int] = {}
        for service in self._services:
            committed = await self._admin.list_consumer_group_offsets(
                self._names.consumer_group(service)
            )
            consumed = [
                tp
                for topic in self._names.consumed_by(service)
                for tp in self._partitions.get(topic, [])
            ]
            arrived[service] = sum(ends[tp] for tp in consumed)
            # A partition the group has never committed on is behind from its start (0).
            lag[service] = sum(
                max(ends[tp] - max(committed[tp].offset, 0), 0) if tp in committed else ends[tp]
                for tp in consumed
            )
        return GroupLag(time.monotonic(), arrived, lag)

    async def _sample_forever(self) -> None:
        while True:
            started = time.monotonic()
            # A reading the broker could not answer (a coordinator moving) is just skipped.
            with contextlib.suppress(KafkaError):
                self.samples.append(await self.read())
            await asyncio.sleep(max(self._interval - (time.monotonic() - started), 0.0))

    async def group_state(self, service: str) -> tuple[str, int]:
        """The state of the service's consumer group and how many members it has."""
        responses = await self._admin.describe_consumer_groups(
            [self._names.consumer_group(service)]
        )
        groups = [group for response in responses for group in response.to_object()["groups"]]
        if not groups:
            return "Dead", 0
        return str(groups[0]["state"]), len(groups[0]["members"])

    def since(self, start: float, end: float | None = None) -> list[GroupLag]:
        return [s for s in self.samples if s.at >= start and (end is None or s.at <= end)]

    def latest(self) -> GroupLag | None:
        return self.samples[-1] if self.samples else None
