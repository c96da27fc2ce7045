"""Customers without an e-mail address or a name (point-of-sale and draft orders), and
notifications skipped for a reason.

Revision ID: notification_0002
Revises: notification_0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_0002"
down_revision: str | Sequence[str] | None = "notification_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("contacts", "email", existing_type=sa.String(254), nullable=True)
    op.alter_column("contacts", "name", existing_type=sa.String(200), nullable=True)
    op.add_column("notifications", sa.Column("skip_reason", sa.String(64)))


def downgrade() -> None:
    op.drop_column("notifications", "skip_reason")
    # Contacts without an address or a name cannot be kept once both are required again.
    op.execute("DELETE FROM contacts WHERE email IS NULL OR name IS NULL")
    op.alter_column("contacts", "name", existing_type=sa.String(200), nullable=False)
    op.alter_column("contacts", "email", existing_type=sa.String(254), nullable=False)
