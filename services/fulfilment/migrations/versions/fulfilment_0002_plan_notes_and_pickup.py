"""The shipment's plan as inventory reports it (the warehouse's country, whether the
parcel goes abroad), the customer's notes, and pickups (no address).

Shipments from before keep NULL where the fact was not recorded: their warehouse's
country came from a setting, not from the reservation.

Revision ID: fulfilment_0002
Revises: fulfilment_0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fulfilment_0002"
down_revision: str | Sequence[str] | None = "fulfilment_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("shipments", sa.Column("warehouse_country", sa.String(2)))
    op.add_column("shipments", sa.Column("international", sa.Boolean))
    op.add_column("shipments", sa.Column("notes", sa.String(2000)))
    op.alter_column("shipments", "shipping_address", nullable=True)
    op.create_check_constraint(
        "shipments_pickup_has_no_address",
        "shipments",
        "(shipping_address IS NULL) = (carrier = 'pickup')",
    )


def downgrade() -> None:
    op.drop_constraint("shipments_pickup_has_no_address", "shipments", type_="check")
    # Fails while a pickup exists: the earlier schema cannot hold a shipment without an
    # address, and dropping one would lose it.
    op.alter_column("shipments", "shipping_address", nullable=False)
    op.drop_column("shipments", "notes")
    op.drop_column("shipments", "international")
    op.drop_column("shipments", "warehouse_country")
