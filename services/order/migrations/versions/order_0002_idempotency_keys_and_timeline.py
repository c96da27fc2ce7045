"""Idempotency keys of the HTTP intake, the cross-service timeline of each order, and
the indexes of the order listing (newest first, by customer).

Revision ID: order_0002
Revises: order_0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "order_0002"
down_revision: str | Sequence[str] | None = "order_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("response_status", sa.Integer, nullable=False),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
    )
    op.create_table(
        "order_timeline",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("details", postgresql.JSONB, nullable=False),
    )
    op.create_index(
        "order_timeline_order", "order_timeline", ["order_id", "occurred_at", "event_id"]
    )
    op.create_index("orders_created", "orders", ["created_at", "order_id"])
    op.create_index("orders_customer_id", "orders", [sa.text("(customer ->> 'customer_id')")])


def downgrade() -> None:
    op.drop_index("orders_customer_id", table_name="orders")
    op.drop_index("orders_created", table_name="orders")
    op.drop_index("order_timeline_order", table_name="order_timeline")
    op.drop_table("order_timeline")
    op.drop_table("order_idempotency_keys")
