"""The operations view's projections: orders in the funnel, their cross-service
timeline, state counts and their per-minute deltas, events per second per topic, dead
letters, low stock, returns per SKU and reason, notification failures, spans and the
consumer lag snapshot.

Revision ID: operations_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "operations_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("operations",)
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ops_orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(32)),
        sa.Column("external_order_id", sa.String(128)),
        sa.Column("status", sa.String(32)),
        sa.Column("placed_at", TZ),
        sa.Column("entered_state_at", TZ),
        sa.Column("stage_facts", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("last_event_type", sa.String(64)),
        sa.Column("last_event_at", TZ),
        sa.Column("trace_id", sa.String(32)),
    )
    # Stuck orders: per status, oldest first. Recent orders: newest activity first.
    op.create_index("ops_orders_status_entered", "ops_orders", ["status", "entered_state_at"])
    op.create_index("ops_orders_last_event", "ops_orders", ["last_event_at"])
    op.create_table(
        "ops_order_events",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_index("ops_order_events_subject", "ops_order_events", ["subject", "occurred_at"])
    op.create_table(
        "ops_state_counts",
        sa.Column("status", sa.String(32), primary_key=True),
        sa.Column("orders", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ops_state_deltas",
        sa.Column("minute", TZ, primary_key=True),
        sa.Column("status", sa.String(32), primary_key=True),
        sa.Column("delta", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ops_topic_rates",
        sa.Column("second", TZ, primary_key=True),
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ops_dead_letters",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("dead_letter_topic", sa.String(255), nullable=False),
        sa.Column("dead_letter_partition", sa.Integer, nullable=False),
        sa.Column("dead_letter_offset", sa.BigInteger, nullable=False),
        sa.Column("consumer_group", sa.String(255), nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary),
        sa.Column("value_omitted_bytes", sa.BigInteger),
        sa.Column("headers", postgresql.JSONB, nullable=False),
        sa.Column("error_class", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("attempts", sa.Integer),
        sa.Column("failed_at", TZ),
        sa.Column("source_topic", sa.String(255)),
        sa.Column("source_partition", sa.Integer),
        sa.Column("source_offset", sa.BigInteger),
        sa.Column("event_type", sa.String(128)),
        sa.Column("replayed_at", TZ),
        sa.Column("replays", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint(
            "dead_letter_topic",
            "dead_letter_partition",
            "dead_letter_offset",
            name="ops_dead_letters_position",
        ),
    )
    op.create_index("ops_dead_letters_group", "ops_dead_letters", ["consumer_group", "id"])
    op.create_table(
        "ops_low_stock",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("warehouse_id", sa.String(64), primary_key=True),
        sa.Column("available", sa.BigInteger),
        sa.Column("threshold", sa.BigInteger),
        sa.Column("detected_at", TZ),
        sa.Column("restocked_at", TZ),
    )
    op.create_table(
        "ops_sku_stats",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("ordered_units", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("ordered_lines", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("return_units", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("return_lines", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ops_sku_stats_returns", "ops_sku_stats", ["return_units"])
    op.create_table(
        "ops_return_reasons",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(64), primary_key=True),
        sa.Column("units", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ops_notification_failures",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("subject_key", sa.String(128), nullable=False),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(512), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("cause_event_type", sa.String(128), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
    )
    op.create_index("ops_notification_failures_time", "ops_notification_failures", ["occurred_at"])
    op.create_table(
        "ops_spans",
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32)),
        sa.Column("start_time", TZ, nullable=False),
        sa.Column("end_time", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attributes", postgresql.JSONB, nullable=False),
        sa.Column("order_id", sa.String(64)),
    )
    op.create_index("ops_spans_trace", "ops_spans", ["trace_id"])
    op.create_index("ops_spans_order", "ops_spans", ["order_id"])
    op.create_table(
        "ops_consumer_lag",
        sa.Column("consumer_group", sa.String(255), primary_key=True),
        sa.Column("lag", sa.BigInteger, nullable=False),
        sa.Column("partitions", postgresql.JSONB, nullable=False),
        sa.Column("refreshed_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "ops_consumer_lag",
        "ops_spans",
        "ops_notification_failures",
        "ops_return_reasons",
        "ops_sku_stats",
        "ops_low_stock",
        "ops_dead_letters",
        "ops_topic_rates",
        "ops_state_deltas",
        "ops_state_counts",
        "ops_order_events",
        "ops_orders",
    ):
        op.drop_table(table)
