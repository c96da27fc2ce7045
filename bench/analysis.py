"""The arithmetic of the benchmark, free of I/O so it is tested on its own: percentiles,
sustained throughput, the open-loop schedule, the lag-bounded and keeping-up decisions, the
steps of the maximum-rate search, lag recovery, the limit the machine allows, and the CPU
each process spends per order."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50": round(self.p50, 2),
            "p95": round(self.p95, 2),
            "p99": round(self.p99, 2),
            "max": round(self.max, 2),
        }


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) with linear interpolation between the closest ranks,
    as numpy's default does."""
    if not values:
        raise ValueError("no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is not within 0..1")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    below = math.floor(position)
    above = math.ceil(position)
    weight = position - below
    return ordered[below] * (1.0 - weight) + ordered[above] * weight


def summarize(values: Sequence[float]) -> LatencySummary | None:
    if not values:
        return None
    return LatencySummary(
        count=len(values),
        p50=percentile(values, 0.50),
        p95=percentile(values, 0.95),
        p99=percentile(values, 0.99),
        max=max(values),
    )


def sustained_throughput(
    completions_in_submission_order: Sequence[float], warmup_fraction: float
) -> float | None:
    """Completed flows per second once the first `warmup_fraction` of the orders (by
    submission) are left out: over the completion times of the rest. While the system
    keeps up this is the offered rate; when it falls behind, the rate it really clears."""
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warm-up fraction {warmup_fraction} is not within [0, 1)")
    kept = after_warmup(completions_in_submission_order, warmup_fraction)
    if len(kept) < 2:
        return None
    span = max(kept) - min(kept)
    if span <= 0:
        return None
    return (len(kept) - 1) / span


def burst_throughput(first_due: float, completions: Sequence[float]) -> float | None:
    """Orders per second to clear a burst: every order from the first one's due time to
    the last completion."""
    if not completions:
        return None
    span = max(completions) - first_due
    return len(completions) / span if span > 0 else None


def due_offset(number: int, rate: float) -> float:
    """Seconds after the start at which order `number` (0-based) is due: open-loop, the
    schedule never waits for an answer."""
    if rate <= 0:
        raise ValueError(f"rate {rate} must be positive")
    return number / rate


def orders_due(elapsed: float, rate: float, limit: int | None = None) -> int:
    """How many orders must have been sent `elapsed` seconds after the start."""
    if elapsed < 0:
        return 0
    due = math.floor(elapsed * rate + 1e-9) + 1
    return due if limit is None else min(due, limit)


def orders_for(rate: float, seconds: float) -> int:
    """Orders that keep a run of `seconds` busy at `rate`, at least one."""
    return max(1, math.ceil(rate * seconds))


@dataclass(frozen=True)
class LagSample:
    at: float
    """seconds (monotonic)"""
    arrived: int
    """records on the consumed partitions so far (sum of end offsets)"""
    lag: int
    """records not yet committed by the consumer groups"""


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x; 0 for fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


@dataclass(frozen=True)
class LagVerdict:
    bounded: bool
    lag_growth_per_second: float
    arrivals_per_second: float


def judge_lag(samples: Sequence[LagSample], *, tolerance: float = 0.05) -> LagVerdict:
    """Lag is bounded when, over the second half of the window (the first half is the
    ramp-up), it grows by no more than `tolerance` of the records arriving meanwhile.
    A system that keeps up holds its lag level; one that does not adds a fixed share of
    every second's arrivals."""
    if len(samples) < 4:
        raise ValueError("at least four lag samples are needed to judge a trend")
    tail = samples[len(samples) // 2 :]
    growth = slope([(sample.at, float(sample.lag)) for sample in tail])
    arrivals = slope([(sample.at, float(sample.arrived)) for sample in tail])
    # The lag of an idle system may jitter by a record or two: that is no trend.
    allowed = max(tolerance * arrivals, 1.0)
    return LagVerdict(
        bounded=growth <= allowed, lag_growth_per_second=growth, arrivals_per_second=arrivals
    )


def keeps_up(
    offered_per_second: float, completed_per_second: float | None, *, tolerance: float = 0.05
) -> bool:
    """Whether a step completed its orders as fast as they were offered, within
    `tolerance`. Lag alone can hide a falling-behind system: an order waiting at the first
    consumer adds one record to the lag, a small share of the records a flowing order
    makes, so a backlog of whole orders grows far more slowly in records than in orders."""
    if completed_per_second is None:
        return False
    return completed_per_second >= (1.0 - tolerance) * offered_per_second


def next_search_rate(
    outcomes: Mapping[float, bool],
    *,
    start: float,
    growth: float = 1.5,
    resolution: float = 0.1,
    floor_rate: float = 1.0,
) -> float | None:
    """The next offered rate of the maximum-rate search, or None when it is done.

    `outcomes` maps each rate tried to whether it was sustainable: lag bounded
    (`judge_lag`) and orders completed as offered (`keeps_up`). Rates rise by `growth`
    until one is not, then the gap between the highest sustainable and the lowest
    unsustainable rate is halved (geometrically) until it is within `resolution`. When
    even `start` is not sustainable, rates fall by `growth`, down to `floor_rate`."""
    if growth <= 1.0:
        raise ValueError("growth must exceed 1")
    if not outcomes:
        return start
    unbounded = [rate for rate, bounded in outcomes.items() if not bounded]
    if not unbounded:
        return max(outcomes) * growth
    lowest_unbounded = min(unbounded)
    bounded_below = [
        rate for rate, bounded in outcomes.items() if bounded and rate < lowest_unbounded
    ]
    if not bounded_below:
        lower = lowest_unbounded / growth
        return lower if lower >= floor_rate else None
    highest_bounded = max(bounded_below)
    if lowest_unbounded / highest_bounded <= 1.0 + resolution:
        return None
    return math.sqrt(highest_bounded * lowest_unbounded)


def maximum_sustainable_rate(outcomes: Mapping[float, bool]) -> float | None:
    """The highest sustainable rate below every rate that was not."""
    unbounded = [rate for rate, bounded in outcomes.items() if not bounded]
    ceiling = min(unbounded, default=math.inf)
    bounded = [rate for rate, ok in outcomes.items() if ok and rate < ceiling]
    return max(bounded, default=None)


@dataclass(frozen=True)
class Recovery:
    peak_lag: int
    caught_up_after_seconds: float | None
    """from the resume until the lag is back at `threshold` or below"""
    zero_after_seconds: float | None
    """from the resume until the lag is zero"""
    threshold: int


def steady_lag_threshold(before_pause: Sequence[int]) -> int:
    """The lag the service runs with in normal operation: the 95th percentile before the
    pause (records in flight are never zero for long under load)."""
    if not before_pause:
        return 0
    # Rounded up, less floating-point noise: 2.0000000000000004 records is 2.
    return math.ceil(percentile([float(lag) for lag in before_pause], 0.95) - 1e-9)


def recovery(
    samples: Sequence[tuple[float, int]], *, paused_at: float, resumed_at: float, threshold: int
) -> Recovery:
    """Peak lag from the pause on, and how long after the resume the lag came back down."""
    after_pause = [lag for at, lag in samples if at >= paused_at]
    after_resume = [(at, lag) for at, lag in samples if at >= resumed_at]
    caught_up = next((at - resumed_at for at, lag in after_resume if lag <= threshold), None)
    zero = next((at - resumed_at for at, lag in after_resume if lag == 0), None)
    return Recovery(
        peak_lag=max(after_pause, default=0),
        caught_up_after_seconds=caught_up,
        zero_after_seconds=zero,
        threshold=threshold,
    )


@dataclass(frozen=True)
class MachineLimit:
    kafka_orders_per_second: float
    postgres_orders_per_second: float

    @property
    def orders_per_second(self) -> float:
        return min(self.kafka_orders_per_second, self.postgres_orders_per_second)

    @property
    def bound_by(self) -> str:
        if self.kafka_orders_per_second <= self.postgres_orders_per_second:
            return "kafka"
        return "postgres"


def machine_limit(
    *,
    kafka_messages_per_second: float,
    messages_per_order: float,
    commits_per_second: float,
    commits_per_order: float,
) -> MachineLimit:
    """What the raw broker and database of this machine allow, given what one order
    costs the system in messages and commits."""
    if messages_per_order <= 0 or commits_per_order <= 0:
        raise ValueError("an order costs at least one message and one commit")
    return MachineLimit(
        kafka_orders_per_second=kafka_messages_per_second / messages_per_order,
        postgres_orders_per_second=commits_per_second / commits_per_order,
    )


@dataclass(frozen=True)
class CpuPerOrder:
    """Milliseconds of CPU each process spent per completed order: the system's (the
    services, Kafka, PostgreSQL) apart from the harness's (what only drives and watches
    the system)."""

    system: dict[str, float]
    harness: dict[str, float]

    @property
    def system_total(self) -> float:
        return sum(self.system.values())

    @property
    def harness_total(self) -> float:
        return sum(self.harness.values())


def cpu_per_order(
    cpu_seconds: Mapping[str, float], orders: int, *, harness: Collection[str]
) -> CpuPerOrder:
    """Each process's CPU seconds over `orders` completed orders, in milliseconds per
    order; the processes named in `harness` apart."""
    if orders <= 0:
        raise ValueError("no completed orders to share the CPU among")
    per_order = {name: seconds * 1000.0 / orders for name, seconds in cpu_seconds.items()}
    return CpuPerOrder(
        system={name: ms for name, ms in per_order.items() if name not in harness},
        harness={name: ms for name, ms in per_order.items() if name in harness},
    )


def cpu_limit(cpu_ms_per_order: float, cpus: int) -> float | None:
    """Orders per second at which processes spending `cpu_ms_per_order` would keep every
    core busy: what the machine allows when CPU, not the broker or the database, is the
    bottleneck."""
    if cpu_ms_per_order <= 0 or cpus <= 0:
        return None
    return cpus * 1000.0 / cpu_ms_per_order


def weighted_mean(parts: Iterable[tuple[int, float]]) -> float | None:
    """The mean of several groups from (size, mean) of each; None for no members."""
    total = 0
    weighted = 0.0
    for size, mean in parts:
        total += size
        weighted += size * mean
    return weighted / total if total > 0 else None


def busiest(cpu_per_order: Mapping[str, float]) -> str:
    """The service that burns the most CPU for the same orders: the first to scale out."""
    if not cpu_per_order:
        raise ValueError("no services measured")
    return max(cpu_per_order, key=lambda service: cpu_per_order[service])


def hop_latencies_ms(
    flows: Sequence[Mapping[str, float]], hops: Sequence[tuple[str, str, str]]
) -> dict[str, list[float]]:
    """Per hop (name, from step, to step), the milliseconds between the two steps of every
    flow that reached both."""
    latencies: dict[str, list[float]] = {name: [] for name, _, _ in hops}
    for flow in flows:
        for name, start, end in hops:
            if start in flow and end in flow:
                latencies[name].append((flow[end] - flow[start]) * 1000.0)
    return latencies


def after_warmup(items: Sequence[T], warmup_fraction: float) -> Sequence[T]:
    return items[math.floor(len(items) * warmup_fraction) :]
