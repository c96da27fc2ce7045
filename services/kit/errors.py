"""Which failures are worth retrying. A transient failure (the database or broker briefly
unavailable, a serialization conflict) is retried and never dead-lettered; anything else
is a bug or a bad event and goes to the dead-letter topic after a few tries."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# PostgreSQL SQLSTATE classes that mean "try again": connection exceptions (08),
# insufficient resources (53), object not in prerequisite state such as a database not
# accepting connections or a lock not available (55), operator intervention such as
# shutdown (57), and transaction rollback: serialization failure and deadlock (40).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "55", "57", "40")

_TRANSIENT_TYPES = (
    OperationalError,
    InterfaceError,
    TimeoutError,
    OSError,  # includes ConnectionError: the database or broker went away
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    KafkaError,  # the broker is infrastructure: a Kafka failure is never the event's fault
)


def is_transient(error: BaseException | None) -> bool:
    if error is None:
        return False
    if isinstance(error, _TRANSIENT_TYPES):
        return True
    if isinstance(error, DBAPIError):
        return (
            error.connection_invalidated
            or _is_transient_sqlstate(getattr(error.orig, "sqlstate", None))
            or is_transient(getattr(error.orig, "__cause__", None))
        )
    if isinstance(error, asyncpg.PostgresError):
        return _is_transient_sqlstate(error.sqlstate)
    return False


def _is_transient_sqlstate(sqlstate: str | None) -> bool:
    return sqlstate is not None and sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
