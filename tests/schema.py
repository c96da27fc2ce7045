"""Does a service's database, as its migrations built it, hold exactly the tables its
code declares? (alembic's autogenerate comparison, limited to the service's own tables.)"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine


async def differences_from_the_code(engine: AsyncEngine, metadata: MetaData) -> list[Any]:
    """What the migrated database has that the code's tables do not, and the other way."""
    ours = set(metadata.tables)

    def ours_only(name: str | None, kind: str, parents: dict[str, str | None]) -> bool:
        # The database also holds the kit's outbox and inbox: they are not ours to check.
        table = name if kind == "table" else parents.get("table_name")
        return table is None or table in ours

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": ours_only}
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)
