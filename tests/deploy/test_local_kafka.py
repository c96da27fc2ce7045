"""deploy/local/kafka.sh: the three-broker cluster (KAFKA_BROKERS=3) keeps taking acks=all
writes with one node down, and every broker it starts is gone after `stop`; the single
broker dies at once with `stop --hard`. Each test runs its own instance on free ports
under /tmp, never the shared development broker."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.deploy.local_scripts import KAFKA_SCRIPT, LocalKafka

TOPIC = "deploy.test.v1"
PARTITIONS = 6  # the script's default


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="oms-kafka-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def produce(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=20_000
    )
    await producer.start()
    try:
        for number, value in enumerate(values):
            await asyncio.wait_for(
                producer.send_and_wait(TOPIC, value=value, key=str(number).encode()), timeout=60
            )
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, expect: int, timeout: float = 60.0) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"deploy-test-{time.monotonic_ns()}",  # a group: needs __consumer_offsets
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expect and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(record.value for record in batch if record.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()
    return values


async def replication_of(bootstrap: str) -> tuple[set[int], set[int], str]:
    """(replica counts, in-sync replica counts) over the topic's partitions, and its
    effective min.insync.replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([TOPIC])
        replicas = {len(partition["replicas"]) for partition in topic["partitions"]}
        in_sync = {len(partition["isr"]) for partition in topic["partitions"]}
        (answer,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, TOPIC, {"min.insync.replicas": None})]
        )
        (resource,) = answer.to_object()["resources"]
        (entry,) = resource["config_entries"]
        return replicas, in_sync, str(entry["config_value"])
    finally:
        await admin.close()


async def eventually_in_sync(bootstrap: str, count: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _, in_sync, _ = await replication_of(bootstrap)
        if in_sync == {count}:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"in-sync replica counts {in_sync}, expected all {count}")
        await asyncio.sleep(1.0)


@pytest.mark.integration
@pytest.mark.timeout(600)
async def test_three_broker_cluster_keeps_acks_all_writes_with_one_node_down(
    state_dir: Path,
) -> None:
    kafka = LocalKafka(state_dir, brokers=3, topics=TOPIC)
    try:
        started = await asyncio.to_thread(kafka.run, "start")
        assert started.stdout.strip() == f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap}"
        assert kafka.bootstrap.count(",") == 2
        assert len(kafka.running_pids()) == 3

        replicas, in_sync, min_in_sync = await replication_of(kafka.bootstrap)
        assert replicas == {3}
        assert in_sync == {3}
        assert min_in_sync == "2"
        await produce(kafka.bootstrap, [f"before-{n}".encode() for n in range(30)])
        assert len(await consume_all(kafka.bootstrap, expect=30)) == 30

        # A crash of one node: two replicas stay in sync, so acks=all still succeeds,
        # and the consumer group's offsets topic (replicated 3 times) stays available.
        await asyncio.to_thread(kafka.stop_node, 2, hard=True)
        assert len(kafka.running_pids()) == 2
        await produce(kafka.bootstrap, [f"degraded-{n}".encode() for n in range(30)])
        assert len(await consume_all(kafka.bootstrap, expect=60)) == 60
        _, in_sync, _ = await replication_of(kafka.bootstrap)
        assert in_sync == {2}, "the killed node left every partition's ISR"

        await asyncio.to_thread(kafka.start_node, 2)
        await eventually_in_sync(kafka.bootstrap, 3)
        await produce(kafka.bootstrap, [f"after-{n}".encode() for n in range(30)])
        values = await consume_all(kafka.bootstrap, expect=90)
        assert sorted(values) == sorted(
            f"{phase}-{n}".encode() for phase in ("before", "degraded", "after") for n in range(30)
        )

        await asyncio.to_thread(kafka.stop)
        assert kafka.running_pids() == []
        assert not any(path.exists() for path in kafka.pid_files())
        status = subprocess.run(
            ["bash", str(KAFKA_SCRIPT), "status"], env=kafka.environment(), check=False
        )
        assert status.returncode == 3, "status says not running"
    finally:
        await asyncio.to_thread(kafka.stop, hard=True)
        assert kafka.running_pids() == []


@pytest.mark.integration
@pytest.mark.timeout(300)
async def test_single_broker_stop_hard_kills_it_and_start_recovers(state_dir: Path) -> None:
    kafka = LocalKafka(state_dir, brokers=1, topics=TOPIC)
    try:
        await asyncio.to_thread(kafka.start)
        assert kafka.bootstrap.count(",") == 0
        await produce(kafka.bootstrap, [b"one"])
        (pid,) = kafka.running_pids()
        await asyncio.to_thread(kafka.stop, hard=True)
        assert kafka.running_pids() == []
        log = (state_dir / "logs" / "kafka.log").read_text(errors="replace")
        # An orderly stop logs "beginShutdown"; SIGKILL gives the broker no chance to.
        assert "beginShutdown" not in log
        await asyncio.to_thread(kafka.start)
        assert kafka.running_pids() != [pid]
        await produce(kafka.bootstrap, [b"two"])
        assert sorted(await consume_all(kafka.bootstrap, expect=2)) == [b"one", b"two"]
    finally:
        await asyncio.to_thread(kafka.stop)
        assert kafka.running_pids() == []


def test_stop_node_is_refused_without_the_cluster(state_dir: Path) -> None:
    kafka = LocalKafka(state_dir, brokers=1)
    with pytest.raises(RuntimeError, match="KAFKA_BROKERS=3"):
        kafka.stop_node(1)


def test_start_node_is_refused_before_the_cluster_was_ever_started(state_dir: Path) -> None:
    kafka = LocalKafka(state_dir, brokers=3)
    with pytest.raises(RuntimeError, match="never started"):
        kafka.start_node(2)


@pytest.mark.parametrize(
    ("setting", "value", "complaint"),
    [
        ("KAFKA_BROKERS", "2", "must be 1 or 3"),
        ("KAFKA_CONTROLLER_PORT", "KAFKA_PORT+2", "clashing ports"),
    ],
)
def test_bad_settings_are_refused_before_anything_starts(
    state_dir: Path, setting: str, value: str, complaint: str
) -> None:
    kafka = LocalKafka(state_dir, brokers=3)
    environment = kafka.environment()
    environment[setting] = str(kafka.kafka_port + 2) if value == "KAFKA_PORT+2" else value
    result = subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "start"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert complaint in result.stderr
    assert kafka.running_pids() == []
