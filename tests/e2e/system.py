"""The whole system for end-to-end tests: each of the five services as its own OS process
(`python -m services.<name>`), on the real broker and database, in a topic namespace and
databases of its own, with a real SMTP server in the test process collecting the mail."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from services.kit.topics import TopicNames
from tests.infrastructure import REPO, Infrastructure
from tests.service_harness import fresh_namespace

SERVICES = ("order", "inventory", "fulfilment", "returns", "notification")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MailCollector:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [message for message in self.messages if message["To"] == address]


@dataclass
class System:
    names: TopicNames
    urls: dict[str, str]
    mail: MailCollector
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls[service], timeout=10.0)

    def log_tail(self, service: str, lines: int = 40) -> str:
        path = self.logs / f"{service}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _service_environment(
    service: str,
    infrastructure: Infrastructure,
    names: TopicNames,
    database_url: str,
    port: int,
    smtp_port: int,
    extra: Mapping[str, str],
) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap_servers,
        "OMS_TOPIC_NAMESPACE": names.namespace,
        f"{service.upper()}_DATABASE_URL": database_url,
        "OMS_HTTP_PORT": str(port),
        "OMS_RELAY_IDLE_SECONDS": "0.1",
        "OMS_NOTIFICATION_SMTP_HOST": "127.0.0.1",
        "OMS_NOTIFICATION_SMTP_PORT": str(smtp_port),
        **extra,
    }


@contextlib.asynccontextmanager
async def running_system(
    infrastructure: Infrastructure, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[System]:
    names = await fresh_namespace(infrastructure)
    mail = MailCollector()
    smtp_port = free_port()
    smtp = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    log_dir.mkdir(parents=True, exist_ok=True)
    system = System(names=names, urls={}, mail=mail, logs=log_dir)
    try:
        for service in SERVICES:
            database_url = await infrastructure.create_database(f"e2e_{service}")
            port = free_port()
            system.urls[service] = f"http://127.0.0.1:{port}"
            log = (log_dir / f"{service}.log").open("ab")
            system.processes[service] = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                cwd=REPO,
                env=_service_environment(
                    service,
                    infrastructure,
                    names,
                    database_url,
                    port,
                    smtp_port,
                    extra_env or {},
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await asyncio.gather(*(_wait_healthy(system, service) for service in SERVICES))
        yield system
    finally:
        for process in system.processes.values():
            _stop(process)
        smtp.stop()


async def _wait_healthy(system: System, service: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with system.client(service) as client:
        while True:
            process = system.processes[service]
            if process.poll() is not None:
                raise AssertionError(
                    f"{service} exited with {process.returncode}:\n{system.log_tail(service)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{service} not healthy:\n{system.log_tail(service)}")
            await asyncio.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
