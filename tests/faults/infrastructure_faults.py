"""Kafka and PostgreSQL that the fault suite may stop: an instance of its own, started with
the deploy/local scripts on free loopback ports and a state directory under /tmp (never
the shared development infrastructure), stopped and deleted at the end.

`LocalInfrastructure` is the `InfrastructureControl` of tests/faults/system.py. With
`brokers=3` Kafka is the three-node cluster (replication factor 3, min.insync.replicas 2)
and one node at a time can be stopped and started again."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import AlterPartitionReassignmentsRequest

from services.kit.logs import get_logger
from tests.deploy.local_scripts import LocalKafka, LocalPostgres
from tests.infrastructure import Infrastructure

log = get_logger(__name__)

REPLICATED_WITHIN_SECONDS = 60.0


class LocalInfrastructure:
    """An async context manager: `async with LocalInfrastructure(brokers=3) as infra:`."""

    def __init__(self, *, brokers: int = 1, keep_state: bool = False) -> None:
        if brokers not in (1, 3):
            raise ValueError(f"brokers must be 1 or 3, not {brokers}")
        self.brokers = brokers
        self.keep_state = keep_state or bool(os.environ.get("OMS_FAULTS_KEEP_STATE"))
        self.state_dir = Path(tempfile.mkdtemp(prefix="oms-faults-", dir="/tmp"))
        # PostgreSQL runs as its own OS user when we are root: it must enter this folder.
        self.state_dir.chmod(0o755)
        self.kafka = LocalKafka(self.state_dir, brokers=brokers)
        self.postgres = LocalPostgres(self.state_dir)
        # Fixed once the ports are chosen (InfrastructureControl's attributes).
        self.bootstrap = self.kafka.bootstrap
        self.postgres_admin_url = self.postgres.admin_url
        self.outages: list[tuple[str, float]] = []
        """(what, seconds it was down) for every stop followed by a start"""
        self._down_since: dict[str, float] = {}

    # --- InfrastructureControl --------------------------------------------------------

    def infrastructure(self) -> Infrastructure:
        return Infrastructure(self.bootstrap, self.postgres_admin_url)

    async def stop_broker(self, *, hard: bool) -> None:
        """Every broker at once: SIGTERM (orderly shutdown) or SIGKILL (a crash)."""
        await asyncio.to_thread(self.kafka.stop, hard=hard)
        self._went_down("kafka")

    async def start_broker(self) -> None:
        await asyncio.to_thread(self.kafka.start)
        self._came_back("kafka")

    async def stop_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.stop)
        self._went_down("postgres")

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.start)
        self._came_back("postgres")

    # --- the three-broker cluster -----------------------------------------------------

    async def stop_one_broker(self, node: int, *, hard: bool) -> None:
        self._require_cluster()
        await asyncio.to_thread(self.kafka.stop_node, node, hard=hard)
        self._went_down(f"kafka node {node}")

    async def start_one_broker(self, node: int) -> None:
        self._require_cluster()
        await asyncio.to_thread(self.kafka.start_node, node)
        self._came_back(f"kafka node {node}")

    async def replicate_everywhere(self, topics: Iterable[str]) -> None:
        """Moves every partition of `topics` onto all three nodes and waits until each
        has three in-sync replicas. The test helpers create topics with one replica
        (tests/kafka_tools.create_topics), which would make a third of the partitions
        unavailable whenever one node is down."""
        self._require_cluster()
        names = sorted(set(topics))
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30_000)
        await admin.start()
        try:
            deadline = time.monotonic() + REPLICATED_WITHIN_SECONDS
            # A topic just created is not in every broker's metadata yet (error 3).
            while True:
                described = await admin.describe_topics(names)
                unknown = [t["topic"] for t in described if t["error_code"] or not t["partitions"]]
                if not unknown and len(described) == len(names):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"topics not in the cluster's metadata: {unknown}")
                await asyncio.sleep(0.3)
            moves: list[tuple[str, list[tuple[int, list[int], dict[Any, Any]]], dict[Any, Any]]]
            moves = []
            for topic in described:
                partitions: list[tuple[int, list[int], dict[Any, Any]]] = []
                for partition in topic["partitions"]:
                    if len(partition["replicas"]) >= 3:
                        continue
                    # The current replica stays first (the preferred leader); the others follow.
                    leader = partition["replicas"][0]
                    replicas = [leader, *(n for n in (1, 2, 3) if n != leader)]
                    partitions.append((partition["partition"], replicas, {}))
                if partitions:
                    moves.append((topic["topic"], partitions, {}))
            if moves:
                request = AlterPartitionReassignmentsRequest(
                    timeout_ms=30_000, topics=moves, tags={}
                )
                response = (await admin._send_request(request)).to_object()
                errors = [
                    (topic["name"], partition["partition_index"], partition["error_message"])
                    for topic in response["responses"]
                    for partition in topic["partitions"]
                    if partition["error_code"] != 0
                ]
                if response["error_code"] != 0 or errors:
                    raise RuntimeError(
                        f"reassignment refused: {response['error_message']} {errors}"
                    )
            while True:
                described = await admin.describe_topics(names)
                short = [
                    f"{topic['topic']}/{partition['partition']}"
                    for topic in described
                    for partition in topic["partitions"]
                    if len(partition["replicas"]) < 3 or len(partition["isr"]) < 3
                ]
                if not short and all(t["partitions"] and not t["error_code"] for t in described):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"not replicated three times: {short[:10]}")
                await asyncio.sleep(0.5)
        finally:
            await admin.close()

    # --- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> LocalInfrastructure:
        try:
            # Independent: the JVMs and PostgreSQL start in parallel.
            await asyncio.gather(
                asyncio.to_thread(self.postgres.start), asyncio.to_thread(self.kafka.start)
            )
            await self._check_superuser()
        except BaseException:
            await self._stop_everything()
            raise
        log.info(
            "fault-suite infrastructure up",
            bootstrap=self.bootstrap,
            postgres_port=self.postgres.port,
            state_dir=str(self.state_dir),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop_everything()

    async def _stop_everything(self) -> None:
        # Each is stopped even if the other fails; the brokers are killed (their data is
        # thrown away), PostgreSQL stopped properly (its script waits for every backend).
        results = await asyncio.gather(
            asyncio.to_thread(self.kafka.stop, hard=True),
            asyncio.to_thread(self.postgres.stop),
            return_exceptions=True,
        )
        left = self.kafka.running_pids()
        if not self.keep_state and not left:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures or left:
            raise RuntimeError(f"stopping the fault-suite infrastructure: {failures}, left {left}")

    async def _check_superuser(self) -> None:
        """The suite creates databases and reads every service's tables as `postgres`."""
        connection = await asyncpg.connect(self.postgres_admin_url, timeout=10)
        try:
            assert await connection.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'"
            )
        finally:
            await connection.close()

    def _require_cluster(self) -> None:
        if self.brokers != 3:
            raise RuntimeError("one broker of three can be stopped only with brokers=3")

    def _went_down(self, what: str) -> None:
        self._down_since[what] = time.monotonic()

    def _came_back(self, what: str) -> None:
        since = self._down_since.pop(what, None)
        if since is not None:
            self.outages.append((what, round(time.monotonic() - since, 2)))
