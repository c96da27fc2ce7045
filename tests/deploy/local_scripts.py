"""The local infrastructure scripts (deploy/local/kafka.sh, postgres.sh) driven from tests:
an instance of Kafka (one broker or three) and PostgreSQL of the test's own, on free
loopback ports and a state directory under /tmp, never the shared development one."""

from __future__ import annotations

import os
import random
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.infrastructure import REPO

KAFKA_SCRIPT = REPO / "deploy" / "local" / "kafka.sh"
POSTGRES_SCRIPT = REPO / "deploy" / "local" / "postgres.sh"
# Below Linux's ephemeral range (32768+), so no outgoing connection takes them meanwhile,
# and away from the shared (29092, 25432) and the test session's (19092, 15432) ports.
PORT_RANGE = (20_000, 28_900)
# Three JVMs on a small machine: start-up is slow but must stay bounded.
SCRIPT_TIMEOUT_SECONDS = 240.0


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int) -> int:
    """The first of `size` consecutive free loopback ports."""
    chooser = random.SystemRandom()
    for _ in range(200):
        base = chooser.randrange(*PORT_RANGE)
        if all(_bindable(base + offset) for offset in range(size)):
            return base
    raise RuntimeError(f"no {size} consecutive free ports in {PORT_RANGE}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class LocalKafka:
    """kafka.sh for one state directory: node N listens on kafka_port + 2(N-1), its
    controller on kafka_port + 1 + 2(N-1)."""

    state_dir: Path
    brokers: int = 1
    kafka_port: int = field(default_factory=lambda: free_port_block(6))
    heap: str = "-Xms128m -Xmx384m"
    topics: str | None = None
    """topic names for the script to create (default: the contracts catalogue)"""

    @property
    def controller_port(self) -> int:
        return self.kafka_port + 1

    def node_port(self, node: int) -> int:
        return self.kafka_port + 2 * (node - 1)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.node_port(n)}" for n in range(1, self.brokers + 1))

    def environment(self) -> dict[str, str]:
        environment = {
            **os.environ,
            "OMS_STATE_DIR": str(self.state_dir),
            "OMS_CACHE_DIR": str(REPO / ".local"),  # the jar cache, shared and read-only here
            "KAFKA_BROKERS": str(self.brokers),
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_HEAP_OPTS": self.heap,
            "KAFKA_START_TIMEOUT": str(int(SCRIPT_TIMEOUT_SECONDS) - 30),
        }
        if self.topics is not None:
            environment["KAFKA_TOPICS"] = self.topics
        return environment

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Runs kafka.sh; raises with its output when it fails."""
        completed = subprocess.run(
            ["bash", str(KAFKA_SCRIPT), *arguments],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"kafka.sh {' '.join(arguments)} exited {completed.returncode}:\n"
                f"{completed.stdout}{completed.stderr}"
            )
        return completed

    def start(self) -> None:
        self.run("start")

    def stop(self, *, hard: bool = False) -> None:
        self.run("stop", *(["--hard"] if hard else []))

    def stop_node(self, node: int, *, hard: bool = False) -> None:
        self.run("stop-node", str(node), *(["--hard"] if hard else []))

    def start_node(self, node: int) -> None:
        self.run("start-node", str(node))

    def pid_files(self) -> list[Path]:
        if self.brokers == 1:
            return [self.state_dir / "kafka" / "kafka.pid"]
        return [
            self.state_dir / "kafka-cluster" / f"node-{n}" / "kafka.pid"
            for n in range(1, self.brokers + 1)
        ]

    def running_pids(self) -> list[int]:
        """The broker processes of this state directory still alive, found by their
        command line (which names the state directory), whatever the pid files say."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"kafka.Kafka " + str(self.state_dir).encode() in command and _alive(
                int(entry.name)
            ):
                found.append(int(entry.name))
        return found


@dataclass
class LocalPostgres:
    state_dir: Path
    port: int = field(default_factory=lambda: free_port_block(1))

    @property
    def admin_url(self) -> str:
        """The superuser over TCP (postgres.sh sets its password to postgres)."""
        return f"postgresql://postgres:postgres@127.0.0.1:{self.port}/postgres"

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            ["bash", str(POSTGRES_SCRIPT), command],
            env={**os.environ, "OMS_STATE_DIR": str(self.state_dir), "PG_PORT": str(self.port)},
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"postgres.sh {command} exited {completed.returncode}:\n"
                f"{completed.stdout}{completed.stderr}"
            )
        return completed

    def start(self) -> None:
        self.run("start")

    def stop(self) -> None:
        self.run("stop")
