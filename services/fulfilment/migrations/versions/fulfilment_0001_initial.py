"""Shipments and the order facts fulfilment remembers.

Revision ID: fulfilment_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "fulfilment_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("fulfilment",)
depends_on: str | Sequence[str] | None = None

STATUSES = ("created", "picked", "packed", "shipped", "delivered", "cancelled")


def upgrade() -> None:
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column("cancellation_reason", sa.String(64)),
        sa.Column("shipping_address", postgresql.JSONB),
        sa.Column("address_changed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "shipments",
        sa.Column("shipment_id", sa.String(128), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("warehouse_id", sa.String(128), nullable=False),
        sa.Column("reservation_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lines", postgresql.JSONB, nullable=False),
        sa.Column("shipping_speed", sa.String(16), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("shipping_method", sa.String(128), nullable=False),
        sa.Column("shipping_cost_minor", sa.BigInteger, nullable=False),
        sa.Column("shipping_cost_currency", sa.String(3), nullable=False),
        sa.Column("shipping_address", postgresql.JSONB, nullable=False),
        sa.Column("customer_locale", sa.String(16), nullable=False),
        sa.Column("tracking_number", sa.String(128), unique=True),
        sa.Column("packages", postgresql.JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("picked_at", sa.DateTime(timezone=True)),
        sa.Column("packed_at", sa.DateTime(timezone=True)),
        sa.Column("shipped_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column("cancellation_reason", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_step_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("order_id", "warehouse_id", name="shipments_one_per_order_warehouse"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")",
            name="shipments_known_status",
        ),
    )
    op.create_index("ix_shipments_order_id", "shipments", ["order_id"])
    op.create_index(
        "shipments_next_step_due",
        "shipments",
        ["next_step_at"],
        postgresql_where=sa.text("next_step_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("shipments_next_step_due", table_name="shipments")
    op.drop_index("ix_shipments_order_id", table_name="shipments")
    op.drop_table("shipments")
    op.drop_table("order_facts")
