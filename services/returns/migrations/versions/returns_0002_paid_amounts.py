"""What was paid: each order line's and the shipping's paid amount with its tax, and each
refund's tax and per-SKU lines.

Rows stored before read as the old rules refunded them: a line paid its unit price times
its quantity, shipping its charge, with no tax; earlier refunds carry no tax and no lines.
Downgrading keeps what each unit paid (rounded down) as its unit price.

Revision ID: returns_0002
Revises: returns_0001
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "returns_0002"
down_revision: str | Sequence[str] | None = "returns_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("paid_minor", sa.BigInteger))
    op.add_column("order_lines", sa.Column("tax_minor", sa.BigInteger))
    op.execute("UPDATE order_lines SET paid_minor = unit_price_minor * quantity, tax_minor = 0")
    op.alter_column("order_lines", "paid_minor", nullable=False)
    op.alter_column("order_lines", "tax_minor", nullable=False)
    op.drop_column("order_lines", "unit_price_minor")

    # Placement columns stay empty until OrderPlaced arrives, so only placed orders get a tax.
    op.alter_column("orders", "shipping_charge_minor", new_column_name="shipping_paid_minor")
    op.add_column("orders", sa.Column("shipping_tax_minor", sa.BigInteger))
    op.execute("UPDATE orders SET shipping_tax_minor = 0 WHERE currency IS NOT NULL")

    for column in ("lines_tax_minor", "shipping_tax_minor"):
        op.add_column(
            "refunds",
            sa.Column(column, sa.BigInteger, nullable=False, server_default=sa.text("0")),
        )
        op.alter_column("refunds", column, server_default=None)
    op.create_table(
        "refund_lines",
        sa.Column(
            "refund_id", sa.String(128), sa.ForeignKey("refunds.refund_id"), primary_key=True
        ),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("tax_minor", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refund_lines")
    op.drop_column("refunds", "shipping_tax_minor")
    op.drop_column("refunds", "lines_tax_minor")

    op.drop_column("orders", "shipping_tax_minor")
    op.alter_column("orders", "shipping_paid_minor", new_column_name="shipping_charge_minor")

    op.add_column("order_lines", sa.Column("unit_price_minor", sa.BigInteger))
    op.execute("UPDATE order_lines SET unit_price_minor = paid_minor / quantity")
    op.alter_column("order_lines", "unit_price_minor", nullable=False)
    op.drop_column("order_lines", "tax_minor")
    op.drop_column("order_lines", "paid_minor")
