"""The returns service's tables: order facts, returns (RMAs) with inspection, refunds.

Revision ID: returns_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "returns_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("returns",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("currency", sa.String(3)),
        sa.Column("shipping_charge_minor", sa.BigInteger),
        sa.Column("customer_id", sa.String(128)),
        sa.Column("placed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("line_id", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "shipments",
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("shipment_id", sa.String(128), primary_key=True),
        sa.Column("warehouse_id", sa.String(128), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "shipment_lines",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("shipment_id", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id", "shipment_id"], ["shipments.order_id", "shipments.shipment_id"]
        ),
    )
    op.create_table(
        "deliveries",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("shipment_id", sa.String(128), primary_key=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "returns",
        sa.Column("return_id", sa.String(128), primary_key=True),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label_reference", sa.String(128)),
        sa.Column("rejection_reasons", postgresql.JSONB),
        sa.Column("receiving_warehouse_id", sa.String(128)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'completed')", name="returns_status"
        ),
    )
    op.create_index("returns_by_order", "returns", ["order_id"])
    op.create_table(
        "return_lines",
        sa.Column(
            "return_id", sa.String(128), sa.ForeignKey("returns.return_id"), primary_key=True
        ),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("received_quantity", sa.Integer),
        sa.Column("restockable_quantity", sa.Integer),
        sa.Column("inspection_note", sa.Text),
    )
    op.create_table(
        "refunds",
        sa.Column("refund_id", sa.String(128), primary_key=True),
        sa.Column(
            "return_id",
            sa.String(128),
            sa.ForeignKey("returns.return_id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("lines_amount_minor", sa.BigInteger, nullable=False),
        sa.Column("shipping_refunded_minor", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("policy", sa.String(128), nullable=False),
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("refunds")
    op.drop_table("return_lines")
    op.drop_index("returns_by_order", table_name="returns")
    op.drop_table("returns")
    op.drop_table("deliveries")
    op.drop_table("shipment_lines")
    op.drop_table("shipments")
    op.drop_table("order_lines")
    op.drop_table("orders")
