"""The inbox: each consumed event id recorded in the same transaction as its effect, so
a redelivered, replayed or duplicated event is recognised and skipped."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kit.tables import inbox


async def claim(
    connection: AsyncConnection,
    *,
    event_id: UUID,
    event_type: str,
    topic: str,
    partition: int,
    offset: int,
) -> bool:
    """True when the event is new and now recorded; False when it was handled before.

    A concurrent claim of the same id by another replica waits on the primary key until
    the first transaction ends, then sees the conflict: only one of them applies it.
    """
    statement = (
        insert(inbox)
        .values(
            event_id=event_id,
            event_type=event_type,
            topic=topic,
            partition=partition,
            offset=offset,
        )
        .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
        .returning(inbox.c.event_id)
    )
    result = await connection.execute(statement)
    return result.first() is not None
