from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import DBAPIError, OperationalError

from services.kit.errors import is_transient


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_database_and_broker_outages_are_transient() -> None:
    assert is_transient(OperationalError("SELECT 1", {}, ConnectionRefusedError()))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(TimeoutError())
    assert is_transient(KafkaConnectionError())
    assert is_transient(asyncpg.CannotConnectNowError("starting up"))


def test_serialization_failures_and_deadlocks_are_transient() -> None:
    assert is_transient(DBAPIError("UPDATE", {}, _DriverError("40001")))
    assert is_transient(DBAPIError("UPDATE", {}, _DriverError("40P01")))


def test_bugs_and_constraint_violations_are_not_transient() -> None:
    assert not is_transient(ValueError("bad data"))
    assert not is_transient(KeyError("missing"))
    assert not is_transient(DBAPIError("INSERT", {}, _DriverError("23505")))
    assert not is_transient(None)
