"""What every command shares: the settings from the global options, the exit codes, the
failure type that carries one, and the session that gives a command its HTTP client and
its output (a table for people, JSON for scripts)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.text import Text

SERVICES = ("order", "inventory", "fulfilment", "returns", "notification")
DEFAULT_PORTS = {
    "order": 8001,
    "inventory": 8002,
    "fulfilment": 8003,
    "returns": 8004,
    "notification": 8005,
}


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1
    """The system answered and said no: a 4xx such as 409, or a rejected return request."""
    USAGE = 2
    """The command line itself is wrong (typer/click's own code)."""
    NOT_FOUND = 3
    UNREACHABLE = 4
    """A service or Kafka could not be reached, timed out or answered 5xx."""


EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 the system refused (a 4xx answer such as 409, e.g. cancelling "
    "an order that has shipped); 2 wrong usage of the command; 3 not found; 4 a service "
    "or Kafka is unreachable or answered with a server error (5xx)."
)


class CliFailure(Exception):
    """A command failed for a reason the operator should read; its exit code says which."""

    def __init__(
        self, exit_code: ExitCode, message: str, *, detail: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = int(exit_code)
        self.detail: dict[str, Any] = dict(detail or {})

    def as_json(self) -> dict[str, Any]:
        return {
            "error": {
                "exit_code": self.exit_code,
                "kind": ExitCode(self.exit_code).name.lower(),
                "message": self.message,
                **self.detail,
            }
        }


@dataclass(frozen=True)
class Settings:
    urls: Mapping[str, str]
    kafka_bootstrap_servers: str
    namespace: str = ""
    json_output: bool = False
    http_timeout: float = 10.0

    def topic(self, name: str) -> str:
        """The physical name of a catalogue topic in this namespace."""
        return f"{self.namespace}.{name}" if self.namespace else name

    def url(self, service: str) -> str:
        return self.urls[service].rstrip("/")


def default_settings() -> Settings:
    return Settings(
        urls={service: f"http://127.0.0.1:{port}" for service, port in DEFAULT_PORTS.items()},
        kafka_bootstrap_servers="127.0.0.1:9092",
    )


@dataclass
class Output:
    """Where a command's results go: rich renderables for people, one JSON document on
    stdout for scripts (and nothing else on stdout). Notes and progress go to stderr."""

    json_mode: bool
    console: Console = field(default_factory=Console)
    notes: Console = field(default_factory=lambda: Console(stderr=True))

    def json(self, document: Any) -> None:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))

    def note(self, message: str, *, style: str = "dim") -> None:
        self.notes.print(message, style=style, markup=False, highlight=False)


@dataclass
class Session:
    settings: Settings
    http: httpx.Client
    out: Output

    @property
    def json_mode(self) -> bool:
        return self.out.json_mode


def settings_of(context: typer.Context) -> Settings:
    settings = context.find_root().obj
    return settings if isinstance(settings, Settings) else default_settings()


def make_http_client(settings: Settings) -> httpx.Client:
    """The HTTP client of one command (a seam: unit tests swap in a mock transport)."""
    return httpx.Client(timeout=settings.http_timeout)


@contextmanager
def operator_session(context: typer.Context, json_flag: bool = False) -> Iterator[Session]:
    """Opens what a command needs and reports its failure: the message on stderr and, in
    JSON mode, an `{"error": ...}` document on stdout; then exits with the failure's code."""
    settings = settings_of(context)
    out = Output(json_mode=settings.json_output or json_flag)
    with make_http_client(settings) as client:
        try:
            yield Session(settings=settings, http=client, out=out)
        except CliFailure as failure:
            if out.json_mode:
                out.json(failure.as_json())
            out.notes.print(
                Text.assemble(("Error: ", "bold red"), failure.message), highlight=False
            )
            raise typer.Exit(failure.exit_code) from None
