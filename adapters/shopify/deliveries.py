"""The webhook deliveries already handled, by `X-Shopify-Webhook-Id`, in a small SQLite
file (DESIGN: SQLite is the embedded default for a single-machine component).

Shopify retries a delivery with the same webhook id until it gets a 2xx, for up to 48
hours; a retry we have already published is answered "duplicate" without publishing
again. An id is recorded only after the broker acknowledged the order, so a delivery
that failed half-way is published in full when it comes again. Even without this record
nothing would be doubled (the order service places each (channel, order id) once); it
saves the broker and the order service the repeated work.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

RETENTION = timedelta(days=7)
"""Longer than Shopify's retry period (48 hours), so every retry still finds its id."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    webhook_id TEXT PRIMARY KEY,
    external_order_id TEXT NOT NULL,
    received_at TEXT NOT NULL
)
"""


class DeliveryLog:
    """Which webhook ids were handled. Each call opens its own connection in a worker
    thread: SQLite calls block, and a short-lived connection needs no thread pinning."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def open(self) -> None:
        """Creates the file and table, and forgets deliveries older than `RETENTION`."""
        await asyncio.to_thread(self._open)

    async def seen(self, webhook_id: str) -> bool:
        return await asyncio.to_thread(self._seen, webhook_id)

    async def record(self, webhook_id: str, external_order_id: str) -> None:
        await asyncio.to_thread(self._record, webhook_id, external_order_id)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cutoff = (datetime.now(UTC) - RETENTION).isoformat()
        with closing(self._connect()) as connection, connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            connection.execute("DELETE FROM webhook_deliveries WHERE received_at < ?", (cutoff,))

    def _seen(self, webhook_id: str) -> bool:
        with closing(self._connect()) as connection, connection:
            row = connection.execute(
                "SELECT 1 FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,)
            ).fetchone()
        return row is not None

    def _record(self, webhook_id: str, external_order_id: str) -> None:
        with closing(self._connect()) as connection, connection:
            connection.execute(
                "INSERT OR IGNORE INTO webhook_deliveries VALUES (?, ?, ?)",
                (webhook_id, external_order_id, datetime.now(UTC).isoformat()),
            )
