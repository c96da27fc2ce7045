"""The backward-compatibility checker, on variants of real committed schemas, and the
committed v1 baseline against today's models."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from contracts.base import Event
from contracts.compat import breaking_changes, pattern_widens
from contracts.events.order import OrderCancelled, OrderPlaced
from contracts.export import event_schema, schema_path

from .conftest import CATALOGUED_EVENTS

REPOSITORY = Path(__file__).resolve().parents[2]


def committed_baseline(path: Path) -> dict[str, Any]:
    """The schema as last committed to git, so that re-running the export with
    --allow-breaking cannot move the baseline; the working-tree file when git or the
    commit is not available (a fresh clone without history, a new untracked event)."""
    relative = path.relative_to(REPOSITORY).as_posix()
    if shutil.which("git"):
        shown = subprocess.run(
            ["git", "show", f"HEAD:{relative}"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            baseline: dict[str, Any] = json.loads(shown.stdout)
            return baseline
    baseline = json.loads(path.read_text(encoding="utf-8"))
    return baseline


@pytest.fixture
def placed_schema() -> dict[str, Any]:
    return committed_baseline(schema_path(OrderPlaced))


def _variant(schema: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(schema)


@pytest.mark.parametrize("event", CATALOGUED_EVENTS, ids=lambda event: event.__name__)
def test_every_committed_v1_schema_still_accepts_what_the_current_model_must_read(
    event: type[Event],
) -> None:
    assert breaking_changes(committed_baseline(schema_path(event)), event_schema(event)) == []


def test_an_identical_schema_has_no_breaking_changes(placed_schema: dict[str, Any]) -> None:
    assert breaking_changes(placed_schema, _variant(placed_schema)) == []


def test_adding_an_optional_field_is_compatible(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    new["properties"]["gift_message"] = {
        "anyOf": [{"type": "string", "maxLength": 500}, {"type": "null"}],
        "default": None,
    }

    assert breaking_changes(placed_schema, new) == []


def test_widening_an_enum_or_a_bound_is_compatible(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    new["$defs"]["ShippingSpeed"]["enum"].append("same_day")
    new["$defs"]["Address"]["properties"]["line1"]["maxLength"] = 400

    assert breaking_changes(placed_schema, new) == []


def test_flags_a_removed_field(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    del new["properties"]["placed_by"]

    assert "property 'placed_by' was removed" in breaking_changes(placed_schema, new)


def test_flags_a_removed_nested_field(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    del new["$defs"]["Address"]["properties"]["line2"]

    assert "property 'shipping_address.line2' was removed" in breaking_changes(placed_schema, new)


def test_flags_a_retyped_field(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    new["$defs"]["OrderLine"]["properties"]["quantity"] = {"type": "string"}

    assert "property 'lines[].quantity' changed type from integer to string" in (
        breaking_changes(placed_schema, new)
    )


def test_flags_money_retyped_to_a_number(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    new["properties"]["total"] = {"type": "number"}

    assert breaking_changes(placed_schema, new) == [
        "property 'total' changed type from object to number"
    ]


def test_flags_a_newly_required_field(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    new["required"].append("placed_by")

    assert "property 'placed_by' is newly required" in breaking_changes(placed_schema, new)


def test_flags_a_new_field_that_is_required(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    new["properties"]["loyalty_tier"] = {"type": "string"}
    new["required"].append("loyalty_tier")

    assert breaking_changes(placed_schema, new) == ["property 'loyalty_tier' is newly required"]


def test_flags_an_optional_field_that_no_longer_accepts_null(
    placed_schema: dict[str, Any],
) -> None:
    new = _variant(placed_schema)
    new["properties"]["placed_by"] = {"type": "string"}

    assert breaking_changes(placed_schema, new) == ["property 'placed_by' no longer accepts null"]


def test_flags_a_narrowed_enum() -> None:
    old = committed_baseline(schema_path(OrderCancelled))
    new = _variant(old)
    new["$defs"]["CancellationReason"]["enum"].remove("fraud")

    assert breaking_changes(old, new) == [
        "property 'reason': enum narrowed, no longer allows \"fraud\""
    ]


def test_flags_tightened_bounds_and_patterns(placed_schema: dict[str, Any]) -> None:
    new = _variant(placed_schema)
    new["properties"]["lines"]["maxItems"] = 100
    new["$defs"]["Customer"]["properties"]["email"]["pattern"] = "^[a-z]+@example\\.com$"

    changes = breaking_changes(placed_schema, new)

    assert "property 'lines': maxItems tightened from 500 to 100" in changes
    assert any(
        change.startswith("property 'customer.email': pattern changed") for change in changes
    )


def test_a_pattern_that_matches_everything_it_matched_before_is_compatible(
    placed_schema: dict[str, Any],
) -> None:
    new = _variant(placed_schema)
    new["properties"]["channel"]["pattern"] = "^[a-z][a-z0-9_-]{0,63}$"

    assert breaking_changes(placed_schema, new) == []


def test_flags_a_pattern_that_widens_one_way_and_narrows_another(
    placed_schema: dict[str, Any],
) -> None:
    new = _variant(placed_schema)
    # Longer channels are allowed, but digits are no longer.
    new["properties"]["channel"]["pattern"] = "^[a-z][a-z_-]{0,63}$"

    assert any(
        "'channel': pattern changed" in change for change in breaking_changes(placed_schema, new)
    )


@pytest.mark.parametrize(
    ("old", "new", "widens"),
    [
        (r"^[A-Za-z0-9][A-Za-z0-9._-]*$", r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", True),
        (r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", r"^[A-Za-z0-9][A-Za-z0-9._-]*$", False),
        (r"^\d{5}$", r"^\d{4,5}$", True),
        (r"^\d{4,5}$", r"^\d{5}$", False),
        (r"^a+$", r"a+", False),  # not anchored: what it matches cannot be compared
        (r"^(?=a)a$", r"^a$", False),  # a lookahead greenery cannot read
    ],
)
def test_pattern_widening_is_decided_on_the_languages(old: str, new: str, widens: bool) -> None:
    assert pattern_widens(old, new) is widens


def test_falls_back_to_jsoncompat_for_changes_it_does_not_name(
    placed_schema: dict[str, Any],
) -> None:
    # `not` is outside the structural comparison; jsoncompat still sees the narrowing.
    new = _variant(placed_schema)
    new["properties"]["channel"]["not"] = {"const": "b2b"}

    assert breaking_changes(placed_schema, new) == [
        "the new schema rejects some events the old one accepted (found by jsoncompat)"
    ]
