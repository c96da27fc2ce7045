"""Inventory tables: warehouses, stock per (sku, warehouse), thresholds, reservations,
cancellations, the stock movement ledger and applied documents.

Revision ID: inventory_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "inventory_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("inventory",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warehouses",
        sa.Column("warehouse_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("latitude", sa.Float, nullable=False),
        sa.Column("longitude", sa.Float, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name="warehouses_latitude_range"),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name="warehouses_longitude_range"),
    )
    op.create_table(
        "stock",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column(
            "warehouse_id",
            sa.String(128),
            sa.ForeignKey("warehouses.warehouse_id"),
            primary_key=True,
        ),
        sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("reserved >= 0", name="stock_reserved_not_negative"),
        sa.CheckConstraint("reserved <= on_hand", name="stock_reserved_within_on_hand"),
    )
    op.create_table(
        "sku_thresholds",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.CheckConstraint("threshold >= 0", name="sku_thresholds_not_negative"),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("reservation_id", sa.String(128), nullable=False, unique=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("shortages", postgresql.JSONB),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('reserved', 'partially_committed', 'committed', 'released', 'failed')",
            name="reservations_status_known",
        ),
    )
    op.create_table(
        "reservation_lines",
        sa.Column(
            "order_id", sa.String(64), sa.ForeignKey("reservations.order_id"), primary_key=True
        ),
        sa.Column("warehouse_id", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("reserved", sa.Integer, nullable=False),
        sa.Column("committed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("released", sa.Integer, nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["sku", "warehouse_id"], ["stock.sku", "stock.warehouse_id"]),
        sa.CheckConstraint("reserved > 0", name="reservation_lines_reserved_positive"),
        sa.CheckConstraint(
            "committed >= 0 AND released >= 0 AND committed + released <= reserved",
            name="reservation_lines_within_reserved",
        ),
    )
    op.create_table(
        "order_cancellations",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column(
            "cancelled_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_table(
        "stock_movements",
        sa.Column("movement_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("warehouse_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("on_hand_change", sa.Integer, nullable=False),
        sa.Column("reserved_change", sa.Integer, nullable=False),
        sa.Column("order_id", sa.String(64)),
        sa.Column("reference", sa.String(128)),
        sa.Column("note", sa.String(2000)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("quantity > 0", name="stock_movements_quantity_positive"),
        sa.CheckConstraint(
            "kind IN ('received', 'adjusted', 'reserved', 'released', 'committed', "
            "'restocked', 'written_off')",
            name="stock_movements_kind_known",
        ),
    )
    op.create_index("stock_movements_by_sku", "stock_movements", ["sku", "movement_id"])
    op.create_table(
        "applied_documents",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("reference", sa.String(128), primary_key=True),
        sa.Column("sku", sa.String(64)),
        sa.Column("warehouse_id", sa.String(128)),
        sa.Column("quantity", sa.Integer),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("applied_documents")
    op.drop_index("stock_movements_by_sku", table_name="stock_movements")
    op.drop_table("stock_movements")
    op.drop_table("order_cancellations")
    op.drop_table("reservation_lines")
    op.drop_table("reservations")
    op.drop_table("sku_thresholds")
    op.drop_table("stock")
    op.drop_table("warehouses")
