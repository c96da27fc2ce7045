"""The topic catalogue: every event has exactly one home, and names follow the rules."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from contracts.base import Event
from contracts.catalogue import (
    CONSUMER_GROUPS,
    TOPICS,
    UnknownEventType,
    all_topic_names,
    dead_letter_topic,
    event_class_for,
    topic_of,
    topics_consumed_by,
)

from .conftest import CATALOGUED_EVENTS


def test_every_event_type_is_in_exactly_one_topic() -> None:
    placements = Counter(event for topic in TOPICS for event in topic.events)

    assert [event.__name__ for event, count in placements.items() if count != 1] == []


def test_event_types_are_unique() -> None:
    types = Counter(event.event_type() for event in CATALOGUED_EVENTS)

    assert [event_type for event_type, count in types.items() if count != 1] == []


@pytest.mark.parametrize("event", CATALOGUED_EVENTS, ids=lambda event: event.__name__)
def test_each_event_type_resolves_to_its_class_and_topic(event: type[Event]) -> None:
    assert event_class_for(event.event_type()) is event
    assert topic_of(event) in {topic.name for topic in TOPICS}


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType, match=r"oms\.Nothing\.v1"):
        event_class_for("oms.Nothing.v1")


def test_topic_names_follow_oms_producer_major_version() -> None:
    for topic in TOPICS:
        assert re.fullmatch(r"oms\.[a-z]+(\.[a-z]+)?\.v1", topic.name), topic.name
        if topic.producer in CONSUMER_GROUPS:  # a service: its own name is the topic's
            assert topic.name == f"oms.{topic.producer}.v1"
    assert "oms.channel.orders.v1" in {topic.name for topic in TOPICS}


def test_each_consumer_group_has_its_own_dead_letter_topic() -> None:
    dead_letters = [dead_letter_topic(group) for group in CONSUMER_GROUPS]

    assert len(set(dead_letters)) == len(CONSUMER_GROUPS)
    assert dead_letter_topic("inventory") == "oms.deadletter.inventory.v1"
    assert set(dead_letters) <= set(all_topic_names())


def test_every_consumer_is_a_known_consumer_group_and_every_group_consumes_something() -> None:
    for topic in TOPICS:
        assert set(topic.consumers) <= set(CONSUMER_GROUPS), topic.name
    for group in CONSUMER_GROUPS:
        assert topics_consumed_by(group), group


def test_no_service_consumes_its_own_topic() -> None:
    for topic in TOPICS:
        assert topic.producer not in topic.consumers, topic.name
