"""The operations view's rules, pure: where an order stands in the funnel, how its stay in
each stage adds to the per-minute state counts, what is stuck, how far consumers lag,
and where a span sits on a trace's time axis.

Every projection is a function of the *set* of facts seen, never of the order they were
consumed in: topics are read in parallel, so a rebuild from the beginning may see an
order's Shipped before its OrderPlaced, and must still end with the same projections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Stage(StrEnum):
    PLACED = "placed"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    COMPLETED = "completed"


# The funnel's order. An order's stages are walked in this order whatever their times say
# (services' clocks differ by milliseconds); cancelled and rejected end an order early,
# completed ends it for good.
STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)
_RANK = {stage: rank for rank, stage in enumerate(STAGE_ORDER)}
FINAL_STAGES = frozenset({Stage.CANCELLED, Stage.REJECTED, Stage.COMPLETED})
OPEN_STAGES: tuple[Stage, ...] = tuple(stage for stage in STAGE_ORDER if stage not in FINAL_STAGES)

STAGE_OF_EVENT: Mapping[str, Stage] = {
    "OrderPlaced": Stage.PLACED,
    "OrderConfirmed": Stage.CONFIRMED,
    "Shipped": Stage.SHIPPED,
    "Delivered": Stage.DELIVERED,
    "ReturnRequested": Stage.RETURN_REQUESTED,
    "Returned": Stage.RETURNED,
    "OrderCancelled": Stage.CANCELLED,
    "OrderRejected": Stage.REJECTED,
    "OrderCompleted": Stage.COMPLETED,
}
"""The events that move an order in the funnel: the order service's own lifecycle events,
and the shipping and return facts the order service itself derives its status from."""

Facts = Mapping[Stage, datetime]
"""When an order first reached each stage it has reached."""


def with_fact(facts: Facts, stage: Stage, at: datetime) -> dict[Stage, datetime]:
    """The facts once `stage` is known to be reached at `at`: the earliest time wins, so
    a duplicate or a later partial shipment never moves the stage's start."""
    merged = dict(facts)
    if stage not in merged or at < merged[stage]:
        merged[stage] = at
    return merged


def walk(facts: Facts) -> list[tuple[Stage, datetime]]:
    """The stages the order went through, in funnel order, each with its start."""
    reached = sorted(facts.items(), key=lambda item: _RANK[item[0]])
    # Nothing happens to an order after a final stage: a late fact cannot reopen it.
    walked: list[tuple[Stage, datetime]] = []
    for stage, at in reached:
        walked.append((stage, at))
        if stage in FINAL_STAGES:
            break
    return walked


def current(facts: Facts) -> tuple[Stage, datetime] | None:
    """The order's stage now and when it entered it; None before any funnel fact."""
    walked = walk(facts)
    return walked[-1] if walked else None


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def second_of(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def stage_minutes(facts: Facts) -> Counter[tuple[datetime, Stage]]:
    """The order's contribution to the per-minute state counts: +1 for a stage in the
    minute the order entered it, -1 in the minute it left it for the next one."""
    deltas: Counter[tuple[datetime, Stage]] = Counter()
    walked = walk(facts)
    for index, (stage, entered) in enumerate(walked):
        deltas[(minute_of(entered), stage)] += 1
        if index + 1 < len(walked):
            left = max(walked[index + 1][1], entered)
            deltas[(minute_of(left), stage)] -= 1
    return deltas


def delta_change(before: Facts, after: Facts) -> dict[tuple[datetime, Stage], int]:
    """What one new fact changes in the per-minute deltas (entries that cancel dropped)."""
    change = stage_minutes(after)
    change.subtract(stage_minutes(before))
    return {key: value for key, value in change.items() if value != 0}


def count_series(
    deltas: Iterable[tuple[datetime, Stage, int]],
    baseline: Mapping[Stage, int],
    minutes: Sequence[datetime],
) -> dict[Stage, list[int]]:
    """Orders per stage at the end of each minute of `minutes` (ascending), given the
    counts before the first of them and the deltas within them."""
    by_minute: dict[datetime, Counter[Stage]] = {}
    for minute, stage, delta in deltas:
        by_minute.setdefault(minute, Counter())[stage] += delta
    running = Counter(baseline)
    series: dict[Stage, list[int]] = {stage: [] for stage in STAGE_ORDER}
    for minute in minutes:
        running.update(by_minute.get(minute, Counter()))
        for stage in STAGE_ORDER:
            series[stage].append(running[stage])
    return series


def minutes_ending(now: datetime, count: int) -> list[datetime]:
    last = minute_of(now)
    return [last - timedelta(minutes=count - 1 - index) for index in range(count)]


@dataclass(frozen=True)
class StuckThresholds:
    """How long an order may stay in an open stage before someone should look at it."""

    limits: Mapping[Stage, timedelta]

    def limit(self, stage: Stage) -> timedelta | None:
        return self.limits.get(stage)

    def overdue_since(self, now: datetime) -> dict[Stage, datetime]:
        """Per open stage: orders that entered it before this moment are stuck."""
        return {stage: now - limit for stage, limit in self.limits.items()}


def is_stuck(stage: Stage, entered: datetime, now: datetime, thresholds: StuckThresholds) -> bool:
    limit = thresholds.limit(stage)
    return limit is not None and now - entered > limit


@dataclass(frozen=True)
class PartitionOffsets:
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        # A committed offset past the end is a truncated or recreated topic: no lag.
        return max(0, self.end - self.committed)


def group_lag(partitions: Iterable[PartitionOffsets]) -> int:
    return sum(partition.lag for partition in partitions)


def preview(value: bytes | None, limit: int = 300) -> str:
    """A readable excerpt of raw bytes: text as it is, anything else escaped."""
    if value is None:
        return ""
    excerpt = value[:limit]
    text = excerpt.decode("utf-8", "backslashreplace")
    printable = "".join(
        character if character.isprintable() or character in "\n\t" else f"\\x{ord(character):02x}"
        for character in text
    )
    return printable + ("…" if len(value) > limit else "")


@dataclass(frozen=True)
class SpanBar:
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    status: str
    depth: int
    offset_percent: float
    width_percent: float
    duration_ms: float


@dataclass(frozen=True)
class SpanTiming:
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    status: str
    start: datetime
    end: datetime


MIN_BAR_PERCENT = 0.4


def waterfall(spans: Sequence[SpanTiming]) -> list[SpanBar]:
    """Spans as bars on one time axis from the trace's first start to its last end, in
    tree order (children under their parent, siblings by start)."""
    if not spans:
        return []
    origin = min(span.start for span in spans)
    finish = max(span.end for span in spans)
    total = max((finish - origin).total_seconds(), 1e-6)
    known = {span.span_id for span in spans}
    children: dict[str | None, list[SpanTiming]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in known else None
        children.setdefault(parent, []).append(span)
    bars: list[SpanBar] = []

    def visit(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda item: (item.start, item.name)):
            offset = (span.start - origin).total_seconds() / total * 100
            width = max((span.end - span.start).total_seconds() / total * 100, MIN_BAR_PERCENT)
            bars.append(
                SpanBar(
                    span_id=span.span_id,
                    parent_span_id=span.parent_span_id,
                    name=span.name,
                    service=span.service,
                    status=span.status,
                    depth=depth,
                    offset_percent=round(min(offset, 100 - MIN_BAR_PERCENT), 3),
                    width_percent=round(min(width, 100 - offset) if offset < 100 else width, 3),
                    duration_ms=round((span.end - span.start).total_seconds() * 1000, 3),
                )
            )
            visit(span.span_id, depth + 1)

    visit(None, 0)
    return bars
