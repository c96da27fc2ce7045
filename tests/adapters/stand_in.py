"""A producer stand-in for tests that need no broker: records what it is given, fails
as told, and counts the acknowledgements in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from adapters.publisher import ChannelPublisher, Producer


class Metadata:
    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset


class StandInProducer:
    """Records what it is given; fails as told; counts acknowledgements in flight."""

    def __init__(self, *, fail_start: bool = False, fail_delivery: bool = False) -> None:
        self.fail_start = fail_start
        self.fail_delivery = fail_delivery
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self.started = self.stopped = False
        self.in_flight = self.most_in_flight = 0

    async def start(self) -> None:
        if self.fail_start:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        self.sent.append((topic, key, value, headers or []))
        offset = len(self.sent) - 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

        async def acknowledgement() -> Metadata:
            await asyncio.sleep(0.01)
            self.in_flight -= 1
            if self.fail_delivery:
                raise KafkaTimeoutError()
            return Metadata(topic, offset)

        return asyncio.ensure_future(acknowledgement())


def publisher_with(
    *producers: StandInProducer, source: str = "/webshop", **options: Any
) -> ChannelPublisher:
    supply = iter(producers)

    def factory() -> Producer:
        return next(supply)

    return ChannelPublisher("unused:9092", source=source, producer_factory=factory, **options)
