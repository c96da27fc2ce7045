"""The whole system under fault injection: the five services as OS processes (as in the
end-to-end tests: a topic namespace and fresh databases of its own, a real SMTP server in
the test process), which the suite can kill -9, start again, and scale out with a second
replica of a service. Every fault is recorded by kind, with the time it was injected.

Infrastructure faults (stopping the broker or PostgreSQL) go through an
`InfrastructureControl`, implemented beside this module for an instance of Kafka and
PostgreSQL that the suite owns: never the shared development infrastructure."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from aiosmtpd.controller import Controller

from services.kit.topics import TopicNames
from tests.e2e.system import SERVICES, MailCollector, free_port
from tests.infrastructure import REPO, Infrastructure
from tests.service_harness import fresh_namespace

FAST_FULFILMENT = {
    "OMS_FULFILMENT_AUTO": "true",
    "OMS_FULFILMENT_AUTO_PACK_SECONDS": "0.2",
    "OMS_FULFILMENT_AUTO_SHIP_SECONDS": "0.2",
    "OMS_FULFILMENT_AUTO_DELIVER_SECONDS": "0.3",
    "OMS_RETURNS_AUTO_APPROVE": "true",
    "OMS_RELAY_IDLE_SECONDS": "0.1",
    # A mail claimed by a process that was killed goes out again when its claim expires;
    # the local SMTP server answers in milliseconds, so 15 s is still far above any attempt.
    "OMS_NOTIFICATION_CLAIM_LEASE_SECONDS": "15",
    "OMS_TRANSIENT_RETRY_SECONDS": "10",
}
HEALTHY_WITHIN_SECONDS = 120.0


class InfrastructureControl(Protocol):
    """Stops and starts the broker and PostgreSQL the system runs on (an instance of its
    own, never the shared one). Implemented in tests/faults/infrastructure_faults.py."""

    bootstrap: str
    postgres_admin_url: str

    async def stop_broker(self, *, hard: bool) -> None: ...

    async def start_broker(self) -> None: ...

    async def stop_postgres(self) -> None: ...

    async def start_postgres(self) -> None: ...


class TimedMailCollector(MailCollector):
    """Keeps, beside each message, when it arrived and its Message-ID: a repeat of one
    Message-ID is an at-least-once resend, to be told apart from a second message."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.arrivals.append((time.monotonic(), str(self.messages[-1]["Message-ID"] or "")))
        return answer


@dataclass(frozen=True)
class InjectedFault:
    kind: str
    target: str
    at: float
    """time.monotonic() when it was injected"""


@dataclass
class FaultLog:
    injected: list[InjectedFault] = field(default_factory=list)

    def record(self, kind: str, target: str, count: int = 1) -> None:
        now = time.monotonic()
        self.injected.extend(InjectedFault(kind, target, now) for _ in range(count))

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(fault.kind for fault in self.injected).items()))

    @property
    def last_at(self) -> float | None:
        return max((fault.at for fault in self.injected), default=None)


@dataclass
class ServiceProcess:
    service: str
    replica: int
    port: int
    environment: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return self.service if self.replica == 0 else f"{self.service}#{self.replica}"

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                cwd=REPO,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a kill reaches whatever the service started.
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def wait_exit(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class FaultySystem:
    infrastructure: Infrastructure
    names: TopicNames
    mail: TimedMailCollector
    logs: Path
    database_urls: dict[str, str]
    """per service, the libpq URL of its database (postgresql://…) for direct reads"""
    control: InfrastructureControl | None = None
    faults: FaultLog = field(default_factory=FaultLog)
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.infrastructure.kafka_bootstrap_servers

    def url(self, service: str) -> str:
        """The first replica's address; it keeps its port across kills and restarts."""
        return self.processes[service][0].url

    def client(self, service: str, timeout: float = 10.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url(service), timeout=timeout)

    # --- service faults -------------------------------------------------------------

    async def kill(self, service: str) -> None:
        """kill -9 of the service's first replica: no shutdown, no final commit."""
        primary = self.processes[service][0]
        primary.signal(signal.SIGKILL)
        await asyncio.to_thread(primary.wait_exit, 10)
        self.faults.record("service_kill", service)

    async def start(self, service: str, *, wait: bool = True) -> None:
        """Starts the first replica again; `wait=False` returns once it is spawned, so the
        next fault can come while it is still starting (`wait_all_healthy` checks later)."""
        primary = self.processes[service][0]
        if primary.running:
            return
        primary.spawn()
        if wait:
            await self.wait_healthy(primary)

    async def restart(self, service: str, *, hard: bool = True) -> None:
        """kill -9 (hard) or SIGTERM, then start again on the same port and database."""
        if hard:
            await self.kill(service)
        else:
            primary = self.processes[service][0]
            primary.signal(signal.SIGTERM)
            await asyncio.to_thread(primary.wait_exit, 20)
            self.faults.record("service_stop", service)
        await self.start(service)

    async def add_replica(self, service: str) -> ServiceProcess:
        """A second process of the service in the same (namespaced) consumer group, on
        its own HTTP port and the same database: the group rebalances."""
        primary = self.processes[service][0]
        replica_number = max(p.replica for p in self.processes[service]) + 1
        port = free_port()
        replica = ServiceProcess(
            service=service,
            replica=replica_number,
            port=port,
            environment={**primary.environment, "OMS_HTTP_PORT": str(port)},
            log_path=self.logs / f"{service}-{replica_number}.log",
        )
        replica.spawn()
        self.processes[service].append(replica)
        await self.wait_healthy(replica)
        self.faults.record("replica_added", service)
        return replica

    async def remove_replica(self, service: str) -> None:
        """Stops the newest extra replica cleanly (SIGTERM): the group rebalances again."""
        extras = [p for p in self.processes[service] if p.replica > 0]
        if not extras:
            raise ValueError(f"{service} has no extra replica to remove")
        replica = extras[-1]
        replica.signal(signal.SIGTERM)
        await asyncio.to_thread(replica.wait_exit, 20)
        self.processes[service].remove(replica)
        self.faults.record("replica_removed", service)

    # --- infrastructure faults (through the control the other half of the suite owns) --

    def _control(self) -> InfrastructureControl:
        if self.control is None:
            raise RuntimeError("this system runs on infrastructure the suite may not stop")
        return self.control

    async def stop_broker(self, *, hard: bool) -> None:
        await self._control().stop_broker(hard=hard)
        self.faults.record("broker_kill" if hard else "broker_stop", "kafka")

    async def start_broker(self) -> None:
        await self._control().start_broker()

    async def stop_postgres(self) -> None:
        await self._control().stop_postgres()
        self.faults.record("postgres_stop", "postgres")

    async def start_postgres(self) -> None:
        await self._control().start_postgres()

    # --- health ---------------------------------------------------------------------

    async def wait_healthy(
        self, process: ServiceProcess, timeout: float = HEALTHY_WITHIN_SECONDS
    ) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=process.url, timeout=5.0) as client:
            while True:
                if not process.running:
                    code = process.process.returncode if process.process else None
                    raise AssertionError(
                        f"{process.name} exited with {code}:\n{process.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{process.name} not healthy:\n{process.log_tail()}")
                await asyncio.sleep(0.3)

    async def wait_all_healthy(self) -> None:
        await asyncio.gather(*(self.wait_healthy(p) for ps in self.processes.values() for p in ps))

    def assert_all_running(self) -> None:
        down = [p.name for ps in self.processes.values() for p in ps if not p.running]
        assert not down, f"services not running: {down}"

    def stop_all(self) -> None:
        everyone = [p for ps in self.processes.values() for p in ps]
        for process in everyone:
            process.signal(signal.SIGTERM)
        for process in everyone:
            process.wait_exit(15)


def _libpq(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def faulty_system(
    infrastructure: Infrastructure,
    log_dir: Path,
    *,
    control: InfrastructureControl | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[FaultySystem]:
    """The five services running, healthy, on `infrastructure` (or on the one `control`
    stops and starts, when given); every process and the SMTP server stopped at the end."""
    if control is not None:
        infrastructure = Infrastructure(control.bootstrap, control.postgres_admin_url)
    names = await fresh_namespace(infrastructure)
    mail = TimedMailCollector()
    smtp_port = free_port()
    smtp = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    log_dir.mkdir(parents=True, exist_ok=True)
    system = FaultySystem(
        infrastructure=infrastructure,
        names=names,
        mail=mail,
        logs=log_dir,
        database_urls={},
        control=control,
    )
    try:
        for service in SERVICES:
            database_url = await infrastructure.create_database(f"faults_{service}")
            system.database_urls[service] = _libpq(database_url)
            port = free_port()
            environment = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap_servers,
                "OMS_TOPIC_NAMESPACE": names.namespace,
                f"{service.upper()}_DATABASE_URL": database_url,
                "OMS_HTTP_PORT": str(port),
                "OMS_NOTIFICATION_SMTP_HOST": "127.0.0.1",
                "OMS_NOTIFICATION_SMTP_PORT": str(smtp_port),
                **FAST_FULFILMENT,
                **(extra_env or {}),
            }
            primary = ServiceProcess(
                service=service,
                replica=0,
                port=port,
                environment=environment,
                log_path=log_dir / f"{service}.log",
            )
            system.processes[service] = [primary]
            primary.spawn()
        await asyncio.gather(
            *(system.wait_healthy(system.processes[service][0]) for service in SERVICES)
        )
        yield system
    finally:
        await asyncio.to_thread(system.stop_all)
        smtp.stop()
