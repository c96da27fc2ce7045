"""The SMTP sink runs in a process of its own, so its CPU is counted apart, and only
counts what it receives."""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys

import psutil
import pytest

from bench.infrastructure import REPO
from bench.mail_sink import MailSinkFailed, mail_sink
from bench.processes import free_port

MESSAGE = b"Subject: Your order has been delivered\r\n\r\nEnjoy it.\r\n"
KEEPS_A_SINK_OPEN = """
import sys, time
from bench.mail_sink import mail_sink
with mail_sink(int(sys.argv[1])) as sink:
    print(sink.pid, flush=True)
    time.sleep(120)
"""


def test_the_sink_counts_the_mail_it_receives_in_a_process_of_its_own() -> None:
    with mail_sink(free_port()) as sink:
        assert sink.pid != os.getpid()
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
            for _ in range(3):
                smtp.sendmail("shop@example.com", ["ada@example.com"], MESSAGE)
        assert sink.received == 3


def test_a_sink_that_cannot_listen_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failure = pytest.raises(MailSinkFailed, match=f"before listening on 127.0.0.1:{port}")
        with failure, mail_sink(port):
            pass


def test_the_sink_ends_when_the_benchmark_is_killed() -> None:
    benchmark = subprocess.Popen(
        [sys.executable, "-c", KEEPS_A_SINK_OPEN, str(free_port())],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert benchmark.stdout is not None
        sink = psutil.Process(int(benchmark.stdout.readline()))
        benchmark.kill()
        sink.wait(timeout=10)
    finally:
        benchmark.kill()
        benchmark.wait()
