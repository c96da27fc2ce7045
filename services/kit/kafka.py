"""Kafka clients configured for delivery that neither loses nor reorders: the aiokafka
defaults are acks=1 without idempotence, which can lose or duplicate on a broker hiccup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from services.kit.logs import get_logger
from services.kit.settings import ServiceSettings

log = get_logger(__name__)


def create_producer(settings: ServiceSettings, *, client_id: str) -> ResilientProducer:
    def factory() -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.kafka_linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=30_000,
        )

    return ResilientProducer(factory)


class ResilientProducer:
    """An idempotent producer that can be replaced after a broker failure.

    After a broker restart an idempotent aiokafka producer can stay stuck on
    OutOfOrderSequenceNumber until it is recreated (aiokafka #1017). Whoever sees a send
    fail calls `recreate()`; the unacknowledged records are sent again by the caller
    (the outbox relay republishes its batch), and consumers' inboxes absorb any copy.
    """

    def __init__(self, factory: Callable[[], AIOKafkaProducer]) -> None:
        self._factory = factory
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self.recreated = 0

    @property
    def current(self) -> AIOKafkaProducer:
        if self._producer is None:
            # A Kafka error, so that callers treat it as an outage and recreate again.
            raise KafkaConnectionError("no connected producer (the last start failed)")
        return self._producer

    async def start(self) -> None:
        producer = self._factory()
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def recreate(self) -> None:
        async with self._lock:
            old, self._producer = self._producer, None
            if old is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(old.stop(), timeout=10)
            await self.start()  # may fail while the broker is down: the next send retries
            self.recreated += 1
            log.warning("kafka producer recreated after a failure", times=self.recreated)

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> asyncio.Future[Any]:
        """Enqueue; the returned future resolves once the broker acknowledged."""
        future: asyncio.Future[Any] = await self.current.send(
            topic, value=value, key=key, headers=list(headers)
        )
        return future

    async def send_and_wait(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> Any:
        return await self.current.send_and_wait(topic, value=value, key=key, headers=list(headers))
