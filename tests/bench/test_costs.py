"""How cumulative readings (CPU of each process, end offsets of each partition) become
what a phase cost."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from bench.observer import per_topic
from bench.processes import difference, per_service


def test_a_phase_costs_the_difference_of_two_cumulative_readings() -> None:
    before = {"order": 10.0, "kafka": 100.0}
    after = {"order": 14.5, "kafka": 130.0, "order#1": 2.0}
    assert difference(after, before) == pytest.approx({"order": 4.5, "kafka": 30.0, "order#1": 2.0})


def test_replicas_count_under_their_service() -> None:
    assert per_service({"order": 4.0, "order#1": 2.0, "returns": 1.0}) == pytest.approx(
        {"order": 6.0, "returns": 1.0}
    )


def test_records_on_a_topic_are_the_end_offsets_of_its_partitions_summed() -> None:
    ends = {
        TopicPartition("ns.oms.order.v1", 0): 40,
        TopicPartition("ns.oms.order.v1", 1): 2,
        TopicPartition("ns.oms.returns.v1", 0): 0,
    }
    assert per_topic(ends) == {"ns.oms.order.v1": 42, "ns.oms.returns.v1": 0}
