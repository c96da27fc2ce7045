"""The money of an order: its discounts, tax, shipping lines and charges, each line's
amount after discounts and its tax, and the breakdown of each refund.

Revision ID: order_0003
Revises: order_0002
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "order_0003"
down_revision: str | Sequence[str] | None = "order_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("total_discounts_minor", sa.BigInteger))
    op.add_column("orders", sa.Column("total_tax_minor", sa.BigInteger))
    op.add_column("orders", sa.Column("pricing", postgresql.JSONB))
    op.add_column("order_lines", sa.Column("title", sa.Text))
    op.add_column("order_lines", sa.Column("discounted_total_minor", sa.BigInteger))
    op.add_column("order_lines", sa.Column("tax_minor", sa.BigInteger))
    op.add_column("order_lines", sa.Column("pricing", postgresql.JSONB))
    op.add_column("order_refunds", sa.Column("goods_amount_minor", sa.BigInteger))
    op.add_column("order_refunds", sa.Column("tax_amount_minor", sa.BigInteger))
    op.add_column("order_refunds", sa.Column("shipping_amount_minor", sa.BigInteger))


def downgrade() -> None:
    for column in ("shipping_amount_minor", "tax_amount_minor", "goods_amount_minor"):
        op.drop_column("order_refunds", column)
    for column in ("pricing", "tax_minor", "discounted_total_minor", "title"):
        op.drop_column("order_lines", column)
    for column in ("pricing", "total_tax_minor", "total_discounts_minor"):
        op.drop_column("orders", column)
