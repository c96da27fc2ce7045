"""Physical topic names. A namespace (`OMS_TOPIC_NAMESPACE`) prefixes every catalogue
topic, so several isolated systems (a test run, a staging copy) can share one cluster."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.base import Event
from contracts.catalogue import (
    all_topic_names,
    dead_letter_topic,
    topic_of,
    topics_consumed_by,
)


@dataclass(frozen=True)
class TopicNames:
    namespace: str = ""

    def physical(self, name: str) -> str:
        return f"{self.namespace}.{name}" if self.namespace else name

    def logical(self, physical: str) -> str:
        prefix = f"{self.namespace}."
        return physical.removeprefix(prefix) if self.namespace else physical

    def of_event(self, event_class: type[Event]) -> str:
        return self.physical(topic_of(event_class))

    def consumer_group(self, group: str) -> str:
        """Groups are namespaced too: isolated systems must not rebalance each other."""
        return f"{self.namespace}.{group}" if self.namespace else group

    def dead_letters(self, consumer_group: str) -> str:
        return self.physical(dead_letter_topic(consumer_group))

    def consumed_by(self, service: str) -> tuple[str, ...]:
        return tuple(self.physical(name) for name in topics_consumed_by(service))

    def all(self) -> tuple[str, ...]:
        return tuple(self.physical(name) for name in all_topic_names())
