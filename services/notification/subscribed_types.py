"""Which consumed events call for anything: those told by e-mail, and those of a type some
webhook subscribes to. The others (most of an order's events) need not be read at all,
and a batch looks subscriptions up only for the types some subscription may name.

The subscribed types are kept in memory, as this replica last read them: each replica
reads them again every `refresh_seconds`, and the replica that takes a subscription adds
its types at once. A new subscription therefore covers the events consumed from at most
`refresh_seconds` after it was made (at once on the replica that made it). Until the
types are first read, every type counts as subscribed: nothing is left unread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from services.kit.logs import get_logger
from services.kit.runtime import ServiceRuntime
from services.notification import db
from services.notification.messages import EMAIL_PLANS

log = get_logger(__name__)

EMAILED_TYPES = frozenset(event.event_type() for event in EMAIL_PLANS)
"""The CloudEvents types told by e-mail."""


class SubscribedTypes:
    def __init__(self, *, refresh_seconds: float) -> None:
        self._refresh_seconds = refresh_seconds
        self._known: frozenset[str] | None = None
        self._added_while_reading: set[str] = set()

    def reads(self, event_type: str) -> bool:
        """Whether a consumed record of this CloudEvents type needs reading at all: its
        event is told by e-mail, or a webhook may subscribe to it. Cheap enough to ask of
        every record before its body is parsed."""
        return event_type in EMAILED_TYPES or self.may_include(event_type)

    def may_include(self, event_type: str) -> bool:
        """False only when no subscription named the type when last read (nor since, on
        this replica)."""
        return self._known is None or event_type in self._known

    def add(self, event_types: Iterable[str]) -> None:
        """Counts the types of a subscription this replica has just committed."""
        added = frozenset(event_types)
        self._added_while_reading |= added
        if self._known is not None:
            self._known |= added

    async def refresh(self, connection: AsyncConnection) -> None:
        """Reads the subscribed types again. Types added while the read is under way are
        kept: the read may have started before their subscription was committed."""
        self._added_while_reading = set()
        subscribed = await db.subscribed_event_types(connection)
        self._known = subscribed | self._added_while_reading

    async def follow(self, runtime: ServiceRuntime) -> None:
        """Refreshes the types for the life of the service."""
        while True:
            try:
                async with runtime.engine.connect() as connection:
                    await self.refresh(connection)
            except Exception as error:
                # The database is away: keep what was known, and try again next time.
                log.warning("could not read the subscribed event types", error=repr(error))
            await asyncio.sleep(self._refresh_seconds)
