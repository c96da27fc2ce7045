"""The order service's tables: products, orders, lines, status history, shipments,
returns, refunds and notifications.

Revision ID: order_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "order_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("order",)
depends_on: str | Sequence[str] | None = None


def _now() -> sa.sql.elements.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_order_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("customer", postgresql.JSONB),
        sa.Column("currency", sa.String(3)),
        sa.Column("subtotal_minor", sa.BigInteger),
        sa.Column("shipping_charge_minor", sa.BigInteger),
        sa.Column("total_minor", sa.BigInteger),
        sa.Column("shipping_address", postgresql.JSONB),
        sa.Column("shipping_speed", sa.String(16)),
        sa.Column("placed_at", sa.DateTime(timezone=True)),
        sa.Column("placed_by", sa.String(128)),
        sa.Column("notes", sa.Text),
        sa.Column("rejection_reasons", postgresql.JSONB),
        sa.Column("reservation_id", sa.String(128)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("final_status", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint(
            "channel", "external_order_id", name="orders_channel_external_order_id_key"
        ),
    )
    op.create_index("orders_status", "orders", ["status"])
    op.create_index(
        "orders_awaiting_completion",
        "orders",
        ["status", "delivered_at"],
        postgresql_where=sa.text("completed_at IS NULL"),
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("line_id", sa.String(128), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger, nullable=False),
        sa.Column("line_total_minor", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "order_status_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column("from_status", sa.String(32)),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("cause_event_id", sa.Uuid),
        sa.Column("command", sa.String(64)),
        sa.Column("actor", sa.String(128), nullable=False),
    )
    op.create_index("order_status_history_order", "order_status_history", ["order_id", "id"])
    op.create_table(
        "order_shipments",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("shipment_id", sa.String(128), primary_key=True),
        sa.Column("warehouse_id", sa.String(128)),
        sa.Column("carrier", sa.String(128)),
        sa.Column("shipping_method", sa.String(128)),
        sa.Column("tracking_number", sa.String(128)),
        sa.Column("planned_lines", postgresql.JSONB),
        sa.Column("shipped_lines", postgresql.JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("shipped_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column("cancellation_reason", sa.String(32)),
    )
    op.create_table(
        "order_returns",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("return_id", sa.String(128), primary_key=True),
        sa.Column("requested_lines", postgresql.JSONB),
        sa.Column("requested_at", sa.DateTime(timezone=True)),
        sa.Column("rejected_at", sa.DateTime(timezone=True)),
        sa.Column("returned_lines", postgresql.JSONB),
        sa.Column("returned_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "order_refunds",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("refund_id", sa.String(128), primary_key=True),
        sa.Column("return_id", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("lines_amount_minor", sa.BigInteger, nullable=False),
        sa.Column("shipping_refunded_minor", sa.BigInteger, nullable=False),
        sa.Column("policy", sa.String(128), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "order_notifications",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("notification_id", sa.String(128), primary_key=True),
        sa.Column("cause_event_id", sa.Uuid, nullable=False),
        sa.Column("cause_event_type", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(512), nullable=False),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("order_notifications")
    op.drop_table("order_refunds")
    op.drop_table("order_returns")
    op.drop_table("order_shipments")
    op.drop_index("order_status_history_order", table_name="order_status_history")
    op.drop_table("order_status_history")
    op.drop_table("order_lines")
    op.drop_index("orders_awaiting_completion", table_name="orders")
    op.drop_index("orders_status", table_name="orders")
    op.drop_table("orders")
    op.drop_table("products")
