"""Contacts, webhook subscriptions and notifications.

Revision ID: notification_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "notification_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("notification",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("locale", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_order_id", sa.String(128), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("subscription_id", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(512), nullable=False, unique=True),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(128)), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("cause_event_id", sa.Uuid, nullable=False),
        sa.Column("cause_event_type", sa.String(128), nullable=False),
        sa.Column("subject_key", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(512)),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("subscription_id", sa.String(64)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint(
            "cause_event_id",
            "recipient",
            "channel",
            name="notifications_one_per_recipient",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(
        "notifications_due",
        "notifications",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("notifications_by_subject", "notifications", ["subject_key", "created_at"])


def downgrade() -> None:
    op.drop_index("notifications_by_subject", table_name="notifications")
    op.drop_index("notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("webhook_subscriptions")
    op.drop_table("contacts")
