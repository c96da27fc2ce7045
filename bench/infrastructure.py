"""Kafka and PostgreSQL for the benchmark: either addresses given on the command line, or
an instance of the project's local scripts (deploy/local/infra.sh) in a state directory
and on ports of its own, so it never meets the development system (9092/5432) or the test
suite's (19092/15432). An instance the benchmark started is stopped again at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
INFRA_SCRIPT = REPO / "deploy" / "local" / "infra.sh"


@dataclass(frozen=True)
class LocalInstance:
    """Where the benchmark's own Kafka and PostgreSQL live and listen."""

    state_dir: Path
    kafka_port: int
    kafka_controller_port: int
    postgres_port: int

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "OMS_STATE_DIR": str(self.state_dir),
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(self.kafka_controller_port),
            "PG_PORT": str(self.postgres_port),
        }

    def kafka_pid(self) -> int | None:
        return _pid_from(self.state_dir / "kafka" / "kafka.pid")

    def postgres_pid(self) -> int | None:
        return _pid_from(self.state_dir / "postgres-data" / "postmaster.pid")


def _pid_from(path: Path) -> int | None:
    try:
        first_line = path.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return int(first_line) if first_line.isdigit() else None


@dataclass(frozen=True)
class Infrastructure:
    bootstrap: str
    postgres_admin_url: str
    """libpq superuser URL: postgresql://user:password@host:port/postgres"""
    local: LocalInstance | None = None
    """Set when the benchmark runs the instance: its processes can then be measured."""

    def database_url(self, name: str) -> str:
        """libpq URL of another database on the same server, same credentials."""
        return self.postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"

    async def create_database(self, name: str) -> str:
        connection = await asyncpg.connect(self.postgres_admin_url)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.database_url(name)

    async def drop_databases(self, names: Sequence[str]) -> None:
        connection = await asyncpg.connect(self.postgres_admin_url)
        try:
            for name in names:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    async def create_topics(self, names: Sequence[str], partitions: int) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
            )
        finally:
            await admin.close()

    async def delete_topics(self, names: Sequence[str]) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            present = [name for name in names if name in existing]
            if present:
                await admin.delete_topics(present)
        finally:
            await admin.close()


def sqlalchemy_url(libpq_url: str) -> str:
    return libpq_url.replace("postgresql://", "postgresql+asyncpg://", 1)


@contextlib.asynccontextmanager
async def provided(
    *,
    bootstrap: str | None,
    postgres_url: str | None,
    local: LocalInstance,
    keep: bool,
) -> AsyncIterator[Infrastructure]:
    """The given infrastructure when both addresses are given, else the local instance,
    started now and stopped at the end unless `keep`."""
    if bootstrap and postgres_url:
        yield Infrastructure(bootstrap, postgres_url)
        return
    await asyncio.to_thread(_infra_script, local, "up")
    try:
        yield Infrastructure(
            f"127.0.0.1:{local.kafka_port}",
            f"postgresql://postgres:postgres@127.0.0.1:{local.postgres_port}/postgres",
            local,
        )
    finally:
        if not keep:
            # Shielded: a Ctrl-C during the run must still stop the broker and the server.
            await asyncio.shield(asyncio.to_thread(_infra_script, local, "down"))


def _infra_script(local: LocalInstance, verb: str) -> None:
    # The script's address lines on stdout are for shells; its progress stays on stderr.
    subprocess.run(
        ["bash", str(INFRA_SCRIPT), verb],
        env=local.environment(),
        check=verb == "up",
        stdout=subprocess.DEVNULL,
    )
