"""Publishes a sales channel's orders on the inbound topic, the way the order service
expects them: checked against the `OrderSubmitted` contract before anything is sent,
keyed `channel:external_order_id`, with CloudEvents headers, through an idempotent
producer that waits for the broker's acknowledgement.

    async with ChannelPublisher("127.0.0.1:9092", source="/webshop") as publisher:
        receipt = await publisher.publish(order)  # OrderSubmitted or a dict

Publishing the same (channel, external_order_id) twice is harmless: the order service
places each channel order once. So after a failure, publish again.

This module depends only on `contracts` (and aiokafka): adapters live outside the
services and talk to them over Kafka and HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from types import TracebackType
from typing import Any, Protocol
from uuid import UUID

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from contracts.catalogue import topic_of
from contracts.events.channel import OrderSubmitted
from contracts.wire import MAX_EVENT_BYTES, encode

INBOUND_TOPIC = topic_of(OrderSubmitted)
"""The catalogue name of the inbound topic, `oms.channel.orders.v1`."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with an order: where (a dotted path) and what."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class InvalidOrder(ValueError):
    """The order does not satisfy the `OrderSubmitted` contract; nothing was sent."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        described = "; ".join(str(problem) for problem in self.problems)
        super().__init__(f"order fails the OrderSubmitted contract: {described}")


class PublishFailed(RuntimeError):
    """The broker did not acknowledge the order (unreachable, timed out, refused).

    Nothing is known about whether the record arrived; publishing again is safe."""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    # Decimals and floats are refused on purpose: money is integer minor units.
    raise TypeError(f"{type(value).__name__} is not a JSON value of the contract")


def problems_of(error: ValidationError) -> tuple[FieldProblem, ...]:
    """Each contract violation as a field path and a message (without the input value:
    these end up in logs and answers, and orders carry personal data).

    pydantic also reports a list as too short when one of its items failed; that echo
    is left out, so each problem is named once, where it is."""
    violations = error.errors(include_url=False, include_input=False, include_context=False)
    locations = [tuple(violation["loc"]) for violation in violations]

    def echo(violation: Any) -> bool:
        location = tuple(violation["loc"])
        return violation["type"] == "too_short" and any(
            len(other) > len(location) and other[: len(location)] == location for other in locations
        )

    return tuple(
        FieldProblem(".".join(str(part) for part in violation["loc"]) or "order", violation["msg"])
        for violation in violations
        if not echo(violation)
    )


def validate_order(data: OrderSubmitted | Mapping[str, Any]) -> OrderSubmitted:
    """The order as a contract model, or `InvalidOrder` listing every field problem.

    A mapping is read as the event's JSON would be (ISO 8601 strings for times, strings
    for enums); `datetime`, `UUID` and enum values are accepted too. Without `event_id`
    and `occurred_at` new ones are made.
    """
    if isinstance(data, OrderSubmitted):
        return data
    try:
        document = json.dumps(data, default=_json_default)
    except (TypeError, ValueError) as error:
        raise InvalidOrder([FieldProblem("order", f"not JSON-serialisable: {error}")]) from None
    try:
        return OrderSubmitted.model_validate_json(document)
    except ValidationError as error:
        raise InvalidOrder(problems_of(error)) from None


def inbound_topic(namespace: str = "") -> str:
    """The physical inbound topic: the catalogue name, prefixed by a namespace when the
    system runs in one (`OMS_TOPIC_NAMESPACE` of the services)."""
    return f"{namespace}.{INBOUND_TOPIC}" if namespace else INBOUND_TOPIC


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where the broker stored an order."""

    external_order_id: str
    key: str
    event_id: UUID
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one order of `publish_many`: exactly one of `receipt` (stored),
    `problems` (refused by the contract, not sent) or `error` (the broker failed)."""

    index: int
    receipt: Receipt | None = None
    problems: tuple[FieldProblem, ...] = field(default=())
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.receipt is not None


class Producer(Protocol):
    """The part of `AIOKafkaProducer` the publisher uses (a seam for tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]: ...


class ChannelPublisher:
    """Publishes `OrderSubmitted` events for one sales channel adapter.

    `source` is the CloudEvents source naming the adapter (`/shopify`, `/marketplace`).
    `namespace` prefixes the topic as the services' `OMS_TOPIC_NAMESPACE` does.
    `timeout_seconds` bounds how long one publish waits for the acknowledgement.

    The producer starts on entry (or on first use) and is rebuilt after a broker failure:
    an idempotent producer can stall after an outage (aiokafka #1017), a new one cannot.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        source: str,
        namespace: str = "",
        timeout_seconds: float = 30.0,
        max_in_flight: int = 100,
        client_id: str = "oms-channel-publisher",
        producer_factory: Callable[[], Producer] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.topic = inbound_topic(namespace)
        self.source = source
        self.timeout_seconds = timeout_seconds
        self.max_in_flight = max_in_flight
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._producer_factory = producer_factory or self._idempotent_producer
        self._producer: Producer | None = None
        self._lock = asyncio.Lock()

    def _idempotent_producer(self) -> Producer:
        # aiokafka defaults to acks=1 without idempotence: a leader failover could lose
        # an order or a retry could write it twice. Say what we need.
        producer: Producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            max_request_size=MAX_EVENT_BYTES + 64 * 1024,
            request_timeout_ms=max(1000, int(self.timeout_seconds * 1000)),
        )
        return producer

    async def __aenter__(self) -> ChannelPublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connects to the broker; `PublishFailed` when it cannot be reached."""
        await self._ready_producer()

    async def stop(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _ready_producer(self) -> Producer:
        async with self._lock:
            if self._producer is None:
                producer = self._producer_factory()
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_seconds)
                except (KafkaError, OSError, TimeoutError) as error:
                    await _stop_quietly(producer)
                    raise PublishFailed(f"cannot reach the broker: {_describe(error)}") from error
                self._producer = producer
            return self._producer

    async def _discard(self, producer: Producer) -> None:
        async with self._lock:
            if self._producer is producer:
                self._producer = None
        await _stop_quietly(producer)

    async def publish(self, order: OrderSubmitted | Mapping[str, Any]) -> Receipt:
        """Validates, sends and waits for the broker's acknowledgement.

        `InvalidOrder` (nothing sent) lists every field problem; `PublishFailed` means the
        broker did not acknowledge in time: publishing again is safe."""
        event = validate_order(order)
        producer, delivery = await self._send(event)
        return await self._acknowledged(producer, delivery, event)

    async def _send(self, event: OrderSubmitted) -> tuple[Producer, Awaitable[Any]]:
        """Hands the record to the producer; returns the acknowledgement to await."""
        record = encode(event, source=self.source)
        producer = await self._ready_producer()
        try:
            delivery = await asyncio.wait_for(
                producer.send(
                    self.topic, value=record.value, key=record.key, headers=record.headers
                ),
                self.timeout_seconds,
            )
        except (KafkaError, OSError, TimeoutError) as error:
            await self._discard(producer)
            raise PublishFailed(f"the broker did not take the order: {_describe(error)}") from error
        return producer, delivery

    async def _acknowledged(
        self, producer: Producer, delivery: Awaitable[Any], event: OrderSubmitted
    ) -> Receipt:
        try:
            # Shielded: on a timeout the record may still be delivered; aiokafka must be
            # left to settle its own future.
            metadata = await asyncio.wait_for(asyncio.shield(delivery), self.timeout_seconds)
        except (KafkaError, OSError, TimeoutError) as error:
            await self._discard(producer)
            raise PublishFailed(
                f"the broker did not acknowledge the order: {_describe(error)}"
            ) from error
        return Receipt(
            external_order_id=event.external_order_id,
            key=event.partition_key(),
            event_id=event.event_id,
            topic=metadata.topic,
            partition=metadata.partition,
            offset=metadata.offset,
        )

    async def publish_many(
        self,
        orders: Iterable[OrderSubmitted | Mapping[str, Any]],
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Publishes many orders with at most `max_in_flight` awaiting acknowledgement.

        Never raises for one order: each gets an `Outcome` (in input order), and
        `on_outcome` is called as each completes (for a progress bar). Records with the
        same key keep their order (the idempotent producer preserves it per partition).
        Once the broker fails, the orders not yet handed over are not attempted (their
        outcome says so): a broker that refused one will most likely refuse the next,
        and publishing everything again later is safe.
        """
        slots = asyncio.Semaphore(self.max_in_flight)
        pending: list[asyncio.Task[Outcome]] = []
        broker_failure: list[str] = []

        def report(outcome: Outcome) -> Outcome:
            if on_outcome is not None:
                on_outcome(outcome)
            return outcome

        async def settle(
            index: int, producer: Producer, delivery: Awaitable[Any], event: OrderSubmitted
        ) -> Outcome:
            try:
                receipt = await self._acknowledged(producer, delivery, event)
                return report(Outcome(index, receipt=receipt))
            except PublishFailed as error:
                broker_failure.append(str(error))
                return report(Outcome(index, error=str(error)))
            finally:
                slots.release()

        outcomes: list[Outcome] = []
        async with _cancelling_on_error(pending):
            for index, order in enumerate(orders):
                try:
                    event = validate_order(order)
                except InvalidOrder as invalid:
                    outcomes.append(report(Outcome(index, problems=invalid.problems)))
                    continue
                await slots.acquire()
                if broker_failure:
                    slots.release()
                    skipped = f"not sent after an earlier failure: {broker_failure[0]}"
                    outcomes.append(report(Outcome(index, error=skipped)))
                    continue
                try:
                    producer, delivery = await self._send(event)
                except PublishFailed as error:
                    slots.release()
                    broker_failure.append(str(error))
                    outcomes.append(report(Outcome(index, error=str(error))))
                    continue
                pending.append(asyncio.create_task(settle(index, producer, delivery, event)))
            outcomes.extend(await asyncio.gather(*pending))
        return sorted(outcomes, key=lambda outcome: outcome.index)


@contextlib.asynccontextmanager
async def _cancelling_on_error(tasks: list[asyncio.Task[Outcome]]) -> AsyncIterator[None]:
    """Cancels the unfinished sends when the block is left by an exception (or a
    cancellation), so none outlives the call."""
    try:
        yield
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _stop_quietly(producer: Producer) -> None:
    # Best effort: the producer is being thrown away because the broker failed it.
    with contextlib.suppress(KafkaError, OSError):
        await producer.stop()


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    name, text = type(error).__name__, str(error)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"
