"""The benchmark's command line: presets, options that win over them, phases left out."""

from __future__ import annotations

import pytest
import typer

from bench.cli import SMOKE_ORDERS, parse_environment, resolve_config
from bench.phases import PHASES


def test_by_default_every_phase_runs() -> None:
    config = resolve_config(smoke=False, quick=False, skip=[], overrides={})
    assert config.phases == frozenset(PHASES)
    assert config.orders is None
    assert config.rate is None


def test_smoke_runs_a_few_hundred_orders_through_the_main_run_and_baseline_only() -> None:
    config = resolve_config(smoke=True, quick=False, skip=[], overrides={})
    assert config.orders == SMOKE_ORDERS
    assert config.phases == {"main", "baseline"}


def test_the_phases_run_with_the_trace_ratio_the_services_ship_with_unless_told() -> None:
    assert resolve_config(smoke=False, quick=False, skip=[], overrides={}).trace_ratio is None
    told = resolve_config(smoke=False, quick=False, skip=[], overrides={"trace_ratio": 0.5})
    assert told.trace_ratio == 0.5


def test_options_given_win_over_the_preset_and_none_means_not_given() -> None:
    config = resolve_config(
        smoke=True, quick=False, skip=["baseline"], overrides={"orders": 500, "rate": None}
    )
    assert config.orders == 500
    assert config.rate is not None
    assert config.phases == {"main"}


def test_quick_shortens_the_steps_and_the_pause() -> None:
    default = resolve_config(smoke=False, quick=False, skip=[], overrides={})
    quick = resolve_config(smoke=False, quick=True, skip=[], overrides={})
    assert quick.step_seconds < default.step_seconds
    assert quick.pause_seconds < default.pause_seconds
    assert quick.traced_search_budget_seconds < default.traced_search_budget_seconds


def test_service_environment_is_key_value_pairs() -> None:
    assert parse_environment(["OMS_TRACE_EXPORT=none", "A=b=c"]) == {
        "OMS_TRACE_EXPORT": "none",
        "A": "b=c",
    }
    with pytest.raises(typer.BadParameter):
        parse_environment(["no-equals-sign"])
