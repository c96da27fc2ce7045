"""One service at a time behind a real HTTP server in the test's own event loop, so a
fuzzer in a worker thread can call it over the network while its runtime (database,
Kafka consumer, outbox relay) runs in the loop that started it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from services.fulfilment.app import FulfilmentSettings
from services.fulfilment.app import create_app as create_fulfilment
from services.inventory.app import InventorySettings
from services.inventory.app import create_app as create_inventory
from services.notification.app import NotificationSettings
from services.notification.app import create_app as create_notification
from services.order.app import OrderSettings
from services.order.app import create_app as create_order
from services.returns.app import ReturnsSettings
from services.returns.app import create_app as create_returns
from tests.infrastructure import Infrastructure
from tests.service_harness import fresh_namespace, running_service, settings_environment

STARTUP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ServiceKind:
    name: str
    create_app: Callable[[dict[str, Any]], FastAPI]


SERVICES = {
    kind.name: kind
    for kind in (
        ServiceKind("order", lambda env: create_order(OrderSettings(**env))),
        ServiceKind("inventory", lambda env: create_inventory(InventorySettings(**env))),
        ServiceKind("fulfilment", lambda env: create_fulfilment(FulfilmentSettings(**env))),
        ServiceKind("returns", lambda env: create_returns(ReturnsSettings(**env))),
        ServiceKind("notification", lambda env: create_notification(NotificationSettings(**env))),
    )
}


@dataclass(frozen=True)
class ServedService:
    name: str
    app: FastAPI
    base_url: str


@contextlib.asynccontextmanager
async def serving(
    infrastructure: Infrastructure, kind: ServiceKind
) -> AsyncIterator[ServedService]:
    """The service with its runtime started, answering HTTP on a free local port."""
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database(f"fuzz_{kind.name}")
    app = kind.create_app(settings_environment(infrastructure, names, database_url))
    async with running_service(app):
        # The runtime is started by running_service; uvicorn must not start it again.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        serve_task = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                while not server.started:
                    if serve_task.done():
                        serve_task.result()
                        raise RuntimeError(f"the {kind.name} HTTP server stopped at startup")
                    await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            yield ServedService(kind.name, app, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await serve_task
