"""The SMTP server the notification service sends its mail to, in a process of its own:
receiving three e-mails an order is work of the harness, and its CPU must be counted
apart from the system's and from the load generator's."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

from aiosmtpd.controller import Controller

STOP_WITHIN_SECONDS = 10.0
PARENT_CHECK_SECONDS = 1.0


class MailCounter:
    """aiosmtpd handler that only counts: the benchmark needs to know mail went out, not
    what it said, and keeping tens of thousands of messages would cost memory."""

    def __init__(self, received: Synchronized[int]) -> None:
        self._received = received

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        with self._received.get_lock():
            self._received.value += 1
        return "250 OK"


def serve(port: int, received: Synchronized[int], ready: Event, stop: Event) -> None:
    """The sink process: listens on `port` until `stop` is set, or until the benchmark's
    process is gone (killed, it could not say so)."""
    benchmark = multiprocessing.parent_process()
    controller = Controller(MailCounter(received), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while not stop.wait(PARENT_CHECK_SECONDS):
            if benchmark is not None and not benchmark.is_alive():
                return
    finally:
        controller.stop()


class MailSinkFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class MailSink:
    port: int
    pid: int
    _received: Synchronized[int]

    @property
    def received(self) -> int:
        """Messages accepted so far."""
        return int(self._received.value)


@contextlib.contextmanager
def mail_sink(port: int) -> Iterator[MailSink]:
    """A sink listening on `port` of 127.0.0.1, stopped on exit."""
    # Spawned, not forked: the benchmark's process runs an event loop and threads.
    context = multiprocessing.get_context("spawn")
    received = context.Value("q", 0)
    ready, stop = context.Event(), context.Event()
    process = context.Process(
        target=serve, args=(port, received, ready, stop), name="bench-mail-sink", daemon=True
    )
    process.start()
    try:
        # aiosmtpd's controller gives up on its own when it cannot listen: the process ends.
        while not ready.wait(0.1):
            if not process.is_alive():
                raise MailSinkFailed(
                    f"the SMTP sink exited with {process.exitcode} before listening on "
                    f"127.0.0.1:{port} (its error is above)"
                )
        assert process.pid is not None
        yield MailSink(port, process.pid, received)
    finally:
        stop.set()
        process.join(STOP_WITHIN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
