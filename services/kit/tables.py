"""The messaging tables every service database holds beside its own: the outbox of events
it emits and the inbox of events it has consumed. Created by the kit's migration."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

outbox = Table(
    "outbox",
    metadata,
    # The identity column gives the publication order: the order events were recorded in.
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(128), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
)
Index("outbox_unsent", outbox.c.id, postgresql_where=text("sent_at IS NULL"))

inbox = Table(
    "inbox",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", String(128), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
