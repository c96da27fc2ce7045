"""What the benchmark tells the services through their environment, and what it expects
of them, read from the services' own settings."""

from __future__ import annotations

import pytest

from bench.phases import (
    CONSUMERS_VARIABLE,
    consumers_per_process,
    shipped_trace_ratio,
    tracing_environment,
)
from services.kit.settings import ServiceSettings


def _settings() -> ServiceSettings:
    return ServiceSettings(service_name="order", database_url="postgresql://x/y", http_port=0)


def test_the_trace_ratio_reaches_the_services_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in tracing_environment(0.25).items():
        monkeypatch.setenv(name, value)
    settings = _settings()
    assert settings.trace_sample_ratio == 0.25


def test_the_shipped_trace_ratio_is_the_services_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing_environment(1.0):
        monkeypatch.delenv(name, raising=False)
    settings = _settings()
    assert shipped_trace_ratio() == settings.trace_sample_ratio


def test_a_service_process_joins_its_group_with_as_many_consumers_as_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CONSUMERS_VARIABLE, raising=False)
    settings = _settings()
    assert consumers_per_process({}) == settings.consumers
    monkeypatch.setenv(CONSUMERS_VARIABLE, "3")
    settings = _settings()
    assert consumers_per_process({CONSUMERS_VARIABLE: "3"}) == settings.consumers == 3
