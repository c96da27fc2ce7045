"""Finds the real Kafka broker and PostgreSQL server for the test session.

In order of preference: what the environment names (`KAFKA_BOOTSTRAP_SERVERS` and
`OMS_TEST_POSTGRES_URL`, a superuser URL), testcontainers where a Docker engine runs, and
otherwise the project's own local scripts on test ports, stopped again at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parent.parent
INFRA_SCRIPT = REPO / "deploy" / "local" / "infra.sh"
TEST_STATE_DIR = REPO / ".local" / "test-infra"
TEST_KAFKA_PORT = 19092
TEST_KAFKA_CONTROLLER_PORT = 19093
TEST_PG_PORT = 15432


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap_servers: str
    postgres_admin_url: str
    """libpq-style superuser URL: postgresql://user:password@host:port/postgres"""

    async def create_database(self, prefix: str) -> str:
        """A fresh database for one test module; returns its SQLAlchemy asyncpg URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        connection = await asyncpg.connect(self.postgres_admin_url)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        base = self.postgres_admin_url.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"


@contextmanager
def provide() -> Iterator[Infrastructure]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    postgres = os.environ.get("OMS_TEST_POSTGRES_URL")
    if bootstrap and postgres:
        yield Infrastructure(bootstrap, postgres)
    elif _docker_engine_runs():
        with _containers() as infrastructure:
            yield infrastructure
    else:
        with _local_scripts() as infrastructure:
            yield infrastructure


def _docker_engine_runs() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


@contextmanager
def _containers() -> Iterator[Infrastructure]:
    from testcontainers.community.kafka import KafkaContainer  # type: ignore[import-not-found]
    from testcontainers.community.postgres import (  # type: ignore[import-not-found]
        PostgresContainer,
    )

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        PostgresContainer("postgres:15", username="postgres", password="postgres") as pg,
    ):
        bootstrap = kafka.get_bootstrap_server()
        _create_topics(bootstrap)
        url = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
        yield Infrastructure(bootstrap, url)


@contextmanager
def _local_scripts() -> Iterator[Infrastructure]:
    env = {
        **os.environ,
        "OMS_STATE_DIR": str(TEST_STATE_DIR),
        "KAFKA_PORT": str(TEST_KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(TEST_KAFKA_CONTROLLER_PORT),
        "PG_PORT": str(TEST_PG_PORT),
    }
    subprocess.run(["bash", str(INFRA_SCRIPT), "up"], env=env, check=True)
    try:
        yield Infrastructure(
            f"127.0.0.1:{TEST_KAFKA_PORT}",
            f"postgresql://postgres:postgres@127.0.0.1:{TEST_PG_PORT}/postgres",
        )
    finally:
        subprocess.run(["bash", str(INFRA_SCRIPT), "down"], env=env, check=False)


def _create_topics(bootstrap: str) -> None:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from contracts.catalogue import all_topic_names

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(name, num_partitions=6, replication_factor=1)
                    for name in all_topic_names()
                ]
            )
        finally:
            await admin.close()

    asyncio.run(create())
