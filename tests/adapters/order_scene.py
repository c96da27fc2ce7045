"""The order service in-process against the real broker and database, in a namespace of
its own, for adapter tests that must see their orders placed (or not)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from aiokafka import ConsumerRecord
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.wire import header_map
from services.kit.tables import inbox
from services.kit.topics import TopicNames
from services.order.app import OrderSettings, create_app
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually, read_to_end
from tests.service_harness import fresh_namespace, running_service, settings_environment

INBOUND = "oms.channel.orders.v1"


@dataclass
class OrderScene:
    infrastructure: Infrastructure
    names: TopicNames
    client: httpx.AsyncClient
    database_url: str

    @property
    def bootstrap(self) -> str:
        return self.infrastructure.kafka_bootstrap_servers

    async def orders(self, channel: str, external_order_id: str) -> list[dict[str, Any]]:
        answer = await self.client.get(
            "/orders", params={"channel": channel, "external_order_id": external_order_id}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # A list of summaries, or a page of them once GET /orders is paginated.
        summaries: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
        return summaries

    async def placed(self, channel: str, external_order_id: str) -> dict[str, Any]:
        """The one order for the channel order, once the order service has it."""
        found: list[dict[str, Any]] = []

        async def known() -> bool:
            found[:] = await self.orders(channel, external_order_id)
            return bool(found)

        await eventually(known, timeout=30)
        assert len(found) == 1, f"one order per channel order, found {found}"
        return found[0]

    async def inbound_records(self, key: str) -> list[ConsumerRecord[bytes, bytes]]:
        records = await read_to_end(self.bootstrap, self.names.physical(INBOUND))
        return [record for record in records if record.key == key.encode()]

    async def wait_consumed(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """Until the order service has handled each record (its inbox has the event id)."""
        event_ids = {UUID(header_map(record.headers)["ce_id"]) for record in records}
        engine = create_async_engine(self.database_url)
        try:

            async def consumed() -> bool:
                async with engine.connect() as connection:
                    found = await connection.scalars(
                        select(inbox.c.event_id).where(inbox.c.event_id.in_(event_ids))
                    )
                    return set(found) == event_ids

            await eventually(consumed, timeout=30)
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def running_order_service(
    infrastructure: Infrastructure, sellable_skus: Iterable[str]
) -> AsyncIterator[OrderScene]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("adapters_order")
    settings = OrderSettings(**settings_environment(infrastructure, names, database_url))
    async with running_service(create_app(settings)) as client:
        for sku in sellable_skus:
            answer = await client.put(f"/products/{sku}", json={"name": sku, "active": True})
            assert answer.status_code == 200, answer.text
        yield OrderScene(infrastructure, names, client, database_url)
