"""The inbox: each consumed event id recorded in the same transaction as its effect, so
a redelivered, replayed or duplicated event is recognised and skipped."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kit.tables import inbox

# Built once: every consumed event runs it, and building a statement costs as much CPU
# as executing it.
_CLAIM = (
    insert(inbox)
    .values(
        {
            column: bindparam(column)
            for column in ("event_id", "event_type", "topic", "partition", "offset")
        }
    )
    .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
    .returning(inbox.c.event_id)
)


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
    result = await connection.execute(
        _CLAIM,
        {
            "event_id": event_id,
            "event_type": event_type,
            "topic": topic,
            "partition": partition,
            "offset": offset,
        },
    )
    return result.first() is not None
