"""The relay replaces a producer that failed (aiokafka #1017: an idempotent producer can
stay stuck after a broker restart) and publishes the whole batch again. Fast unit test with
a stand-in for aiokafka's producer; the fault suite proves it against a restarted broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from services.kit.kafka import ResilientProducer


class _StandInProducer:
    def __init__(self, fail_sends: int, log: list[str]) -> None:
        self._fail_sends = fail_sends
        self.log = log

    async def start(self) -> None:
        self.log.append("start")

    async def stop(self) -> None:
        self.log.append("stop")

    async def send(self, topic: str, **_record: Any) -> asyncio.Future[None]:
        if self._fail_sends:
            self._fail_sends -= 1
            raise KafkaConnectionError("broker went away")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        self.log.append(f"sent to {topic}")
        return done


async def test_a_failed_producer_is_replaced_by_a_fresh_one_that_sends() -> None:
    log: list[str] = []
    made = iter([_StandInProducer(1, log), _StandInProducer(0, log)])
    producer = ResilientProducer(lambda: next(made))
    await producer.start()

    with pytest.raises(KafkaConnectionError):
        await producer.send("t", value=b"v", key=b"k", headers=[])
    await producer.recreate()
    await (await producer.send("t", value=b"v", key=b"k", headers=[]))

    assert log == ["start", "stop", "start", "sent to t"]
    assert producer.recreated == 1
