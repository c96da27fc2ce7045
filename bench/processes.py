"""The five services as separate OS processes (`python -m services.<name>`), extra replicas
of one of them, pausing one with SIGSTOP, and what each process costs in CPU and memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.infrastructure import REPO

SERVICES = ("order", "inventory", "fulfilment", "returns", "notification")
HEALTHY_WITHIN_SECONDS = 120.0
STOP_WITHIN_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    service: str
    replica: int
    port: int
    environment: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.service if self.replica == 0 else f"{self.service}#{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                cwd=REPO,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C in the terminal reaches the benchmark only,
                # which then stops every service in order.
                start_new_session=True,
            )

    def signal(self, signum: signal.Signals) -> None:
        if self.running:
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop(self) -> None:
        """SIGTERM (after SIGCONT, in case it is paused), then SIGKILL if it lingers."""
        if self.popen is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_WITHIN_SECONDS)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class ServiceFailed(RuntimeError):
    pass


@dataclass
class Fleet:
    """Every service process of one benchmark run, by service."""

    log_dir: Path
    environments: dict[str, dict[str, str]]
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def everyone(self) -> list[ServiceProcess]:
        return [process for replicas in self.processes.values() for process in replicas]

    async def restart(self, environments: dict[str, dict[str, str]]) -> None:
        """Every service stopped, then started again (one replica each) with these
        environments."""
        await asyncio.to_thread(self.stop)
        self.environments = environments
        self.processes.clear()
        await self.start()

    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service, environment in self.environments.items():
            self.processes[service] = [self._new_process(service, 0, environment)]
        await asyncio.gather(*(self.wait_healthy(process) for process in self.everyone()))

    def _new_process(
        self, service: str, replica: int, environment: Mapping[str, str]
    ) -> ServiceProcess:
        port = free_port()
        process = ServiceProcess(
            service=service,
            replica=replica,
            port=port,
            environment={**environment, "OMS_HTTP_PORT": str(port)},
            log_path=self.log_dir / f"{service}-{replica}.log",
        )
        process.spawn()
        return process

    def url(self, service: str) -> str:
        return self.processes[service][0].url

    async def scale(self, service: str, replicas: int) -> None:
        """Adds replicas (same database, same consumer group) or stops the newest ones."""
        current = self.processes[service]
        while len(current) > replicas:
            extra = current.pop()
            await asyncio.to_thread(extra.stop)
        added = []
        while len(current) < replicas:
            replica = self._new_process(service, len(current), self.environments[service])
            current.append(replica)
            added.append(replica)
        await asyncio.gather(*(self.wait_healthy(process) for process in added))

    def pause(self, service: str) -> None:
        for process in self.processes[service]:
            process.signal(signal.SIGSTOP)

    def resume(self, service: str) -> None:
        for process in self.processes[service]:
            process.signal(signal.SIGCONT)

    def check_running(self) -> None:
        for process in self.everyone():
            if not process.running:
                code = process.popen.returncode if process.popen else None
                raise ServiceFailed(f"{process.name} exited with {code}:\n{process.log_tail()}")

    async def wait_healthy(self, process: ServiceProcess) -> None:
        deadline = time.monotonic() + HEALTHY_WITHIN_SECONDS
        async with httpx.AsyncClient(base_url=process.url, timeout=5.0) as client:
            while True:
                if not process.running:
                    code = process.popen.returncode if process.popen else None
                    raise ServiceFailed(f"{process.name} exited with {code}:\n{process.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise ServiceFailed(f"{process.name} not healthy:\n{process.log_tail()}")
                await asyncio.sleep(0.3)

    def stop(self) -> None:
        everyone = self.everyone()
        for process in everyone:
            process.signal(signal.SIGCONT)
            process.signal(signal.SIGTERM)
        for process in everyone:
            process.stop()


class ResourceMonitor:
    """CPU time and resident memory of named processes. CPU is read as cumulative totals
    (a phase's cost is the difference of two readings); memory is sampled, keeping the
    peak. A tracked process tree (PostgreSQL's server and its backends) counts the CPU of
    children it has already reaped as well, and no memory."""

    def __init__(self) -> None:
        self._processes: dict[str, tuple[psutil.Process, bool]] = {}
        self._last_cpu: dict[str, float] = {}
        self.peak_rss: dict[str, int] = {}

    def track(self, name: str, pid: int, *, with_children: bool = False) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            self._processes[name] = (psutil.Process(pid), with_children)

    def track_fleet(self, fleet: Fleet) -> None:
        """Tracks every process of the fleet not tracked yet. A process restarted under
        the same name replaces the old one, whose cumulative reading it starts again:
        compare readings taken since the restart only."""
        for process in fleet.everyone():
            tracked = self._processes.get(process.name)
            if process.pid is not None and (tracked is None or tracked[0].pid != process.pid):
                self.track(process.name, process.pid)

    def cpu_seconds(self) -> dict[str, float]:
        for name, (process, with_children) in self._processes.items():
            # A process that has ended keeps its last reading.
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                self._last_cpu[name] = _cpu_of(process, with_children)
        return dict(self._last_cpu)

    def sample_memory(self) -> None:
        for name, (process, with_children) in self._processes.items():
            # The backends of a server share its buffers: their RSS would count them twice.
            if with_children:
                continue
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                rss = int(process.memory_info().rss)
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    async def sample_forever(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.to_thread(self.sample_memory)
            await asyncio.sleep(interval)


def _cpu_of(process: psutil.Process, with_children: bool) -> float:
    times = process.cpu_times()
    total = times.user + times.system
    if with_children:
        total += times.children_user + times.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    return float(total)


def per_service(by_process: Mapping[str, float]) -> dict[str, float]:
    """Replicas (`inventory#1`) summed under their service."""
    totals: dict[str, float] = {}
    for name, amount in by_process.items():
        service = name.split("#", 1)[0]
        totals[service] = totals.get(service, 0.0) + amount
    return totals


def difference(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}
