"""The benchmark's arithmetic: percentiles, throughput, the open-loop schedule, the lag
decision, the maximum-rate search, lag recovery, the machine limit and CPU per order."""

from __future__ import annotations

import pytest

from bench import analysis
from bench.analysis import LagSample


def test_percentiles_interpolate_between_ranks_like_numpy() -> None:
    values = [float(number) for number in range(1, 101)]
    assert analysis.percentile(values, 0.5) == pytest.approx(50.5)
    assert analysis.percentile(values, 0.95) == pytest.approx(95.05)
    assert analysis.percentile(values, 0.99) == pytest.approx(99.01)
    assert analysis.percentile([7.0], 0.99) == 7.0
    assert analysis.percentile([3.0, 1.0, 2.0], 0.0) == 1.0
    assert analysis.percentile([3.0, 1.0, 2.0], 1.0) == 3.0


def test_percentile_refuses_no_values_and_fractions_outside_zero_to_one() -> None:
    with pytest.raises(ValueError):
        analysis.percentile([], 0.5)
    with pytest.raises(ValueError):
        analysis.percentile([1.0], 1.5)


def test_summary_has_the_three_percentiles_and_nothing_for_no_values() -> None:
    summary = analysis.summarize([10.0, 20.0, 30.0, 40.0])
    assert summary is not None
    assert summary.as_dict() == {"count": 4, "p50": 25.0, "p95": 38.5, "p99": 39.7, "max": 40.0}
    assert analysis.summarize([]) is None


def test_sustained_throughput_leaves_out_the_warmup_and_counts_completions_per_second() -> None:
    # The first ten complete slowly (start-up), the rest at five per second.
    completions = [float(number) for number in range(10)] + [10 + n / 5 for n in range(90)]
    assert analysis.sustained_throughput(completions, 0.1) == pytest.approx(5.0)
    with_warmup = analysis.sustained_throughput(completions, 0.0)
    assert with_warmup is not None
    assert with_warmup < 5.0


def test_sustained_throughput_needs_two_completions_apart() -> None:
    assert analysis.sustained_throughput([1.0], 0.0) is None
    assert analysis.sustained_throughput([2.0, 2.0], 0.0) is None
    with pytest.raises(ValueError):
        analysis.sustained_throughput([1.0, 2.0], 1.0)


def test_burst_throughput_runs_from_the_first_due_time_to_the_last_completion() -> None:
    assert analysis.burst_throughput(100.0, [101.0, 105.0, 110.0]) == pytest.approx(0.3)
    assert analysis.burst_throughput(100.0, []) is None


def test_open_loop_schedule_sends_by_due_time_whatever_came_back() -> None:
    assert analysis.due_offset(0, 10.0) == 0.0
    assert analysis.due_offset(25, 10.0) == pytest.approx(2.5)
    assert analysis.orders_due(-0.1, 10.0) == 0
    assert analysis.orders_due(0.0, 10.0) == 1
    assert analysis.orders_due(0.35, 10.0) == 4
    # Exactly on a due time (floating point must not lose it).
    assert analysis.orders_due(0.3, 10.0) == 4
    assert analysis.orders_due(100.0, 10.0, limit=50) == 50
    with pytest.raises(ValueError):
        analysis.due_offset(1, 0.0)


def test_a_run_of_given_seconds_gets_at_least_one_order() -> None:
    assert analysis.orders_for(12.5, 60) == 750
    assert analysis.orders_for(0.01, 1) == 1


def test_slope_is_the_least_squares_trend() -> None:
    assert analysis.slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert analysis.slope([(1.0, 1.0)]) == 0.0
    assert analysis.slope([(1.0, 1.0), (1.0, 5.0)]) == 0.0


def _samples(lag_per_second: float, arrivals_per_second: float, jitter: int = 0) -> list[LagSample]:
    return [
        LagSample(
            at=float(second),
            arrived=round(arrivals_per_second * second),
            lag=round(20 + lag_per_second * second) + (jitter if second % 2 else -jitter),
        )
        for second in range(30)
    ]


def test_lag_that_holds_its_level_is_bounded_even_when_it_jitters() -> None:
    verdict = analysis.judge_lag(_samples(0.0, 300.0, jitter=5))
    assert verdict.bounded
    assert verdict.arrivals_per_second == pytest.approx(300.0)


def test_lag_growing_with_a_share_of_the_arrivals_is_unbounded() -> None:
    verdict = analysis.judge_lag(_samples(30.0, 300.0), tolerance=0.05)
    assert not verdict.bounded
    assert verdict.lag_growth_per_second == pytest.approx(30.0)


def test_lag_judged_on_the_second_half_so_the_ramp_up_does_not_count() -> None:
    ramp_then_flat = [
        LagSample(at=float(second), arrived=100 * second, lag=min(second, 10) * 50)
        for second in range(30)
    ]
    assert analysis.judge_lag(ramp_then_flat).bounded


def test_judging_lag_needs_a_few_samples() -> None:
    with pytest.raises(ValueError):
        analysis.judge_lag(_samples(0.0, 1.0)[:3])


def test_a_step_keeps_up_when_it_completes_nearly_what_it_was_offered() -> None:
    assert analysis.keeps_up(16.8, 16.2, tolerance=0.05)
    assert analysis.keeps_up(10.0, 10.4)


def test_a_backlog_of_whole_orders_fails_to_keep_up_even_when_lag_in_records_holds() -> None:
    # Offered 25.2/s, cleared 20.0/s: lag grew by 28.6 of 604 records/s (4.7 %), so the
    # records alone call it bounded, though a fifth of the orders pile up.
    assert analysis.judge_lag(_samples(28.6, 604.0), tolerance=0.05).bounded
    assert not analysis.keeps_up(25.2, 20.0, tolerance=0.05)


def test_a_step_without_a_throughput_did_not_keep_up() -> None:
    assert not analysis.keeps_up(5.0, None)


def test_search_rises_until_unbounded_then_narrows_the_gap() -> None:
    assert analysis.next_search_rate({}, start=5.0) == 5.0
    assert analysis.next_search_rate({5.0: True}, start=5.0) == pytest.approx(7.5)
    narrowed = analysis.next_search_rate({5.0: True, 7.5: True, 11.25: False}, start=5.0)
    assert narrowed == pytest.approx((7.5 * 11.25) ** 0.5)
    assert analysis.next_search_rate({10.0: True, 10.5: False}, start=5.0, resolution=0.1) is None


def test_search_goes_down_when_even_the_first_rate_is_too_much() -> None:
    assert analysis.next_search_rate({30.0: False}, start=30.0) == pytest.approx(20.0)
    assert analysis.next_search_rate({1.2: False}, start=1.2, floor_rate=1.0) is None
    with pytest.raises(ValueError):
        analysis.next_search_rate({}, start=1.0, growth=1.0)


def test_maximum_is_the_highest_sustainable_rate_below_every_unsustainable_one() -> None:
    # 12 held by luck above a rate that did not: it is not the maximum.
    outcomes = {5.0: True, 7.5: True, 9.0: False, 8.2: True, 12.0: True}
    assert analysis.maximum_sustainable_rate(outcomes) == 8.2
    assert analysis.maximum_sustainable_rate({5.0: False}) is None


def test_recovery_measures_peak_and_time_back_to_normal_and_to_zero() -> None:
    samples = [(0.0, 2), (1.0, 3), (2.0, 40), (3.0, 90), (4.0, 60), (5.0, 3), (6.0, 0)]
    result = analysis.recovery(samples, paused_at=1.5, resumed_at=3.5, threshold=3)
    assert result.peak_lag == 90
    assert result.caught_up_after_seconds == pytest.approx(1.5)
    assert result.zero_after_seconds == pytest.approx(2.5)


def test_recovery_that_never_comes_back_down_says_so() -> None:
    result = analysis.recovery([(0.0, 5), (2.0, 50)], paused_at=1.0, resumed_at=1.5, threshold=5)
    assert result.caught_up_after_seconds is None
    assert result.zero_after_seconds is None


def test_normal_lag_is_the_95th_percentile_before_the_pause() -> None:
    assert analysis.steady_lag_threshold([0] * 19 + [40]) == 2
    assert analysis.steady_lag_threshold([]) == 0


def test_machine_limit_is_the_tighter_of_broker_and_database() -> None:
    limit = analysis.machine_limit(
        kafka_messages_per_second=30_000,
        messages_per_order=20,
        commits_per_second=8_000,
        commits_per_order=40,
    )
    assert limit.kafka_orders_per_second == pytest.approx(1_500)
    assert limit.postgres_orders_per_second == pytest.approx(200)
    assert limit.orders_per_second == pytest.approx(200)
    assert limit.bound_by == "postgres"
    with pytest.raises(ValueError):
        analysis.machine_limit(
            kafka_messages_per_second=1, messages_per_order=0, commits_per_second=1,
            commits_per_order=1,
        )  # fmt: skip


def test_cpu_limit_is_the_rate_that_keeps_every_core_busy() -> None:
    # 200 ms of CPU an order: two cores clear 10 a second.
    assert analysis.cpu_limit(200.0, cpus=2) == pytest.approx(10.0)
    assert analysis.cpu_limit(0.0, cpus=2) is None


def test_cpu_per_order_keeps_the_harness_apart_from_the_system() -> None:
    cost = analysis.cpu_per_order(
        {"order": 3.0, "kafka": 1.5, "load_generator": 0.4, "mail_sink": 0.1},
        1_000,
        harness={"load_generator", "mail_sink"},
    )
    assert cost.system == pytest.approx({"order": 3.0, "kafka": 1.5})
    assert cost.harness == pytest.approx({"load_generator": 0.4, "mail_sink": 0.1})
    assert cost.system_total == pytest.approx(4.5)
    assert cost.harness_total == pytest.approx(0.5)


def test_cpu_per_order_needs_a_completed_order() -> None:
    with pytest.raises(ValueError):
        analysis.cpu_per_order({"order": 1.0}, 0, harness=())


def test_weighted_mean_weighs_each_group_by_its_size() -> None:
    # 90 spans of 600 bytes and 10 events of 1,600 bytes.
    assert analysis.weighted_mean([(90, 600.0), (10, 1_600.0)]) == pytest.approx(700.0)
    assert analysis.weighted_mean([]) is None
    assert analysis.weighted_mean([(0, 5.0)]) is None


def test_hop_latencies_take_only_flows_that_reached_both_steps() -> None:
    flows = [
        {"submitted": 10.0, "placed": 10.5, "reserved": 10.6},
        {"submitted": 11.0, "placed": 11.2},
        {"submitted": 12.0},
    ]
    hops = (("to_placed", "submitted", "placed"), ("to_reserved", "placed", "reserved"))
    latencies = analysis.hop_latencies_ms(flows, hops)
    assert latencies["to_placed"] == pytest.approx([500.0, 200.0])
    assert latencies["to_reserved"] == pytest.approx([100.0])


def test_warmup_drops_the_first_share_in_order() -> None:
    assert list(analysis.after_warmup(list(range(10)), 0.25)) == [2, 3, 4, 5, 6, 7, 8, 9]


def test_the_busiest_service_burns_the_most_cpu_per_order() -> None:
    assert analysis.busiest({"order": 30.0, "notification": 45.5, "returns": 2.0}) == (
        "notification"
    )
