"""Runs kit parts in a child process that dies abruptly (os._exit, as a kill -9 would:
no cleanup, no final commit) at a chosen moment.

    python -m tests.kit.crash_child relay-dies-before-marking DB_URL BOOTSTRAP
    python -m tests.kit.crash_child consumer-dies-before-commit DB_URL BOOTSTRAP TOPIC GROUP
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import create_async_engine

from services.kit.dead_letters import ConsumedRecord
from services.kit.metrics import Metrics
from services.kit.pipeline import Outcome
from tests.kit.harness import make_pipeline, make_relay, running_consumer, started_producer

KILLED = 137


async def relay_dies_before_marking(database_url: str, bootstrap: str) -> None:
    engine = create_async_engine(database_url)
    async with started_producer(bootstrap) as producer:
        relay = make_relay(engine, producer, Metrics())

        async def die(_ids: list[int]) -> None:
            os._exit(KILLED)  # published and acknowledged, never marked sent

        relay.mark_sent = die  # type: ignore[method-assign,assignment]
        await relay.publish_batch()


async def consumer_dies_before_commit(
    database_url: str, bootstrap: str, topic: str, group: str
) -> None:
    engine = create_async_engine(database_url)
    async with started_producer(bootstrap) as producer:
        pipeline = make_pipeline(engine, producer, group, Metrics())
        process_batch = pipeline.process_batch

        async def process_then_die(records: Sequence[ConsumedRecord]) -> list[Outcome]:
            outcomes = await process_batch(records)
            if Outcome.HANDLED in outcomes:
                os._exit(KILLED)  # the effects are committed; the offsets are not
            return outcomes

        pipeline.process_batch = process_then_die  # type: ignore[method-assign]
        async with running_consumer(bootstrap, topic, group, pipeline):
            await asyncio.sleep(60)
    os._exit(1)  # never handled anything: the test will say so


if __name__ == "__main__":
    mode, *arguments = sys.argv[1:]
    if mode == "relay-dies-before-marking":
        asyncio.run(relay_dies_before_marking(*arguments))
    elif mode == "consumer-dies-before-commit":
        asyncio.run(consumer_dies_before_commit(*arguments))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
