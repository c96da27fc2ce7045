"""The operations view's pure rules."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

from services.operations import domain
from services.operations.domain import Stage

T0 = datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_walks_stages_in_funnel_order_whatever_their_times() -> None:
    facts = {Stage.SHIPPED: at(120), Stage.PLACED: at(0), Stage.CONFIRMED: at(121)}
    assert [stage for stage, _ in domain.walk(facts)] == [
        Stage.PLACED,
        Stage.CONFIRMED,
        Stage.SHIPPED,
    ]
    assert domain.current(facts) == (Stage.SHIPPED, at(120))


def test_a_final_stage_ends_the_walk_and_late_facts_cannot_reopen_it() -> None:
    facts = {Stage.PLACED: at(0), Stage.CANCELLED: at(5), Stage.COMPLETED: at(9)}
    assert domain.current(facts) == (Stage.CANCELLED, at(5))
    assert domain.current({}) is None


def test_the_earliest_time_of_a_stage_wins() -> None:
    facts = domain.with_fact({Stage.SHIPPED: at(50)}, Stage.SHIPPED, at(70))
    assert facts[Stage.SHIPPED] == at(50)
    assert domain.with_fact(facts, Stage.SHIPPED, at(10))[Stage.SHIPPED] == at(10)


def test_per_minute_deltas_end_the_same_in_any_arrival_order() -> None:
    arrivals = [
        (Stage.PLACED, at(0)),
        (Stage.CONFIRMED, at(70)),
        (Stage.SHIPPED, at(200)),
        (Stage.DELIVERED, at(400)),
        (Stage.SHIPPED, at(230)),
    ]
    results = set()
    for order in itertools.permutations(arrivals):
        facts: dict[Stage, datetime] = {}
        total: Counter[tuple[datetime, Stage]] = Counter()
        for stage, moment in order:
            after = domain.with_fact(facts, stage, moment)
            total.update(domain.delta_change(facts, after))
            facts = after
        results.add(frozenset((key, value) for key, value in total.items() if value))
    assert len(results) == 1
    [deltas] = results
    assert dict(deltas) == {
        (domain.minute_of(at(0)), Stage.PLACED): 1,
        (domain.minute_of(at(70)), Stage.PLACED): -1,
        (domain.minute_of(at(70)), Stage.CONFIRMED): 1,
        (domain.minute_of(at(200)), Stage.CONFIRMED): -1,
        (domain.minute_of(at(200)), Stage.SHIPPED): 1,
        (domain.minute_of(at(400)), Stage.SHIPPED): -1,
        (domain.minute_of(at(400)), Stage.DELIVERED): 1,
    }


def test_count_series_adds_deltas_to_the_baseline_minute_by_minute() -> None:
    minutes = domain.minutes_ending(at(180), 3)
    assert minutes == [
        domain.minute_of(at(60)),
        domain.minute_of(at(120)),
        domain.minute_of(at(180)),
    ]
    series = domain.count_series(
        [
            (minutes[1], Stage.PLACED, 2),
            (minutes[2], Stage.PLACED, -1),
            (minutes[2], Stage.SHIPPED, 1),
        ],
        {Stage.PLACED: 5},
        minutes,
    )
    assert series[Stage.PLACED] == [5, 7, 6]
    assert series[Stage.SHIPPED] == [0, 0, 1]


def test_an_order_is_stuck_only_past_its_stage_threshold() -> None:
    thresholds = domain.StuckThresholds({Stage.PLACED: timedelta(seconds=60)})
    assert domain.is_stuck(Stage.PLACED, at(0), at(61), thresholds)
    assert not domain.is_stuck(Stage.PLACED, at(0), at(59), thresholds)
    assert not domain.is_stuck(Stage.SHIPPED, at(0), at(10**6), thresholds)
    assert thresholds.overdue_since(at(100)) == {Stage.PLACED: at(40)}


def test_lag_is_end_minus_committed_and_never_negative() -> None:
    partitions = [
        domain.PartitionOffsets("t", 0, committed=5, end=9),
        domain.PartitionOffsets("t", 1, committed=12, end=3),
    ]
    assert [partition.lag for partition in partitions] == [4, 0]
    assert domain.group_lag(partitions) == 4


def test_preview_escapes_bytes_that_are_not_text_and_marks_truncation() -> None:
    assert domain.preview(b"\xff\x00ok") == "\\xff\\x00ok"
    assert domain.preview(b"a" * 10, limit=4) == "aaaa…"
    assert domain.preview(None) == ""


def test_waterfall_places_children_under_parents_on_one_time_axis() -> None:
    spans = [
        domain.SpanTiming("b" * 16, "a" * 16, "handle", "inventory", "ok", at(0.5), at(1.0)),
        domain.SpanTiming("a" * 16, None, "intake", "order", "ok", at(0), at(0.5)),
        domain.SpanTiming("c" * 16, "f" * 16, "orphan", "notification", "error", at(1.5), at(2.0)),
    ]
    bars = domain.waterfall(spans)
    assert [(bar.name, bar.depth) for bar in bars] == [
        ("intake", 0),
        ("handle", 1),
        ("orphan", 0),
    ]
    assert [bar.offset_percent for bar in bars] == [0.0, 25.0, 75.0]
    assert [bar.width_percent for bar in bars] == [25.0, 25.0, 25.0]
    assert bars[1].duration_ms == 500.0
    assert domain.waterfall([]) == []
