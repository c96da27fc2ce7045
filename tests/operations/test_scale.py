"""The dashboard with 100,000 orders in its projections: every overview read answers
well within a second (indexed ranges and aggregate tables, no scan of the orders)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.operations.app import OperationsSettings, create_app
from tests.infrastructure import Infrastructure
from tests.service_harness import fresh_namespace, running_service, settings_environment

pytestmark = pytest.mark.integration

ORDERS = 100_000
BOUND_SECONDS = 1.0

STATEMENTS = [
    f"""
    INSERT INTO ops_orders (order_id, channel, external_order_id, status, placed_at,
        entered_state_at, stage_facts, last_event_type, last_event_at, trace_id)
    SELECT 'ord-' || n, (ARRAY['webshop','marketplace','b2b'])[1 + n % 3], 'ext-' || n,
        (ARRAY['placed','confirmed','shipped','delivered','return_requested','returned',
               'cancelled','rejected','completed'])[1 + n % 9],
        now() - make_interval(secs => n * 30), now() - make_interval(secs => n * 20),
        '{{}}'::jsonb, 'OrderPlaced', now() - make_interval(secs => n * 20), md5(n::text)
    FROM generate_series(1, {ORDERS}) AS n
    """,
    """
    INSERT INTO ops_state_counts (status, orders)
    SELECT status, count(*) FROM ops_orders GROUP BY status
    """,
    """
    INSERT INTO ops_state_deltas (minute, status, delta)
    SELECT date_trunc('minute', entered_state_at), status, count(*)
    FROM ops_orders GROUP BY 1, 2
    """,
    f"""
    INSERT INTO ops_order_events (event_id, subject, event_type, topic, source, occurred_at,
        trace_id, summary)
    SELECT md5('e' || n)::uuid, 'ord-' || n, 'OrderPlaced', 'oms.order.v1', 'order',
        now() - make_interval(secs => n * 30), md5(n::text), '1 line(s)'
    FROM generate_series(1, {ORDERS}) AS n
    """,
    """
    INSERT INTO ops_topic_rates (second, topic, events)
    SELECT date_trunc('second', now()) - make_interval(secs => s), t, 1 + s % 7
    FROM generate_series(0, 3600) AS s,
         unnest(ARRAY['oms.order.v1','oms.inventory.v1','oms.fulfilment.v1']) AS t
    """,
    """
    INSERT INTO ops_sku_stats (sku, ordered_units, ordered_lines, return_units, return_lines)
    SELECT 'SKU-' || n, 1000 + n, 900, n % 50, n % 40 FROM generate_series(1, 2000) AS n
    """,
    """
    INSERT INTO ops_return_reasons (sku, reason, units)
    SELECT 'SKU-' || n, r, 1 + n % 9 FROM generate_series(1, 2000) AS n,
         unnest(ARRAY['damaged','wrong_item','not_as_described','no_longer_needed']) AS r
    """,
    """
    INSERT INTO ops_notification_failures (event_id, subject_key, template, channel,
        recipient, error, attempts, cause_event_type, occurred_at)
    SELECT md5('n' || n)::uuid, 'ord-' || n, 'order_placed', 'email', 'a@example.com',
        '550 mailbox unavailable', 5, 'oms.OrderPlaced.v1', now() - make_interval(secs => n)
    FROM generate_series(1, 5000) AS n
    """,
    """
    INSERT INTO ops_dead_letters (dead_letter_topic, dead_letter_partition, dead_letter_offset,
        consumer_group, key, value, headers, error_class, error_message, attempts, source_topic,
        source_partition, source_offset, replays)
    SELECT 'oms.deadletter.order.v1', 0, n, (ARRAY['order','inventory','fulfilment'])[1 + n % 3],
        'k'::bytea, 'poison'::bytea, '[]'::jsonb, 'InvalidEvent', 'bad', 1,
        'oms.channel.orders.v1', 0, n, 0
    FROM generate_series(1, 5000) AS n
    """,
    f"""
    INSERT INTO ops_spans (span_id, trace_id, parent_span_id, name, service, kind, start_time,
        end_time, status, attributes, order_id)
    SELECT substr(md5('s' || n), 1, 16), md5((n / 3)::text), NULL, 'handle', 'order', 'consumer',
        now(), now() + interval '5 ms', 'ok', '{{}}'::jsonb, 'ord-' || (n / 3)
    FROM generate_series(1, {3 * ORDERS}) AS n
    """,
    "ANALYZE",
]

READS = [
    "/api/overview",
    "/api/charts",
    "/",
    "/orders",
    "/orders/ord-4242",
    "/api/orders/ord-4242",
    "/dead-letters",
    "/dead-letters?group=inventory",
]


async def test_overview_answers_within_a_second_with_100000_orders(
    infrastructure: Infrastructure,
) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("operations_scale")
    app = create_app(
        OperationsSettings(
            **settings_environment(infrastructure, names, database_url),
            stuck_after_seconds={"placed": 60, "confirmed": 600, "shipped": 3 * 86400},
        )
    )
    async with running_service(app) as client:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as connection:
                for statement in STATEMENTS:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()
        timings: dict[str, float] = {}
        for path in READS:
            slowest = 0.0
            for _ in range(3):
                started = time.perf_counter()
                answer = await client.get(path)
                slowest = max(slowest, time.perf_counter() - started)
                assert answer.status_code == 200, (path, answer.text[:300])
            timings[path] = slowest
        overview = (await client.get("/api/overview")).json()
    print("\noperations view with 100,000 orders, slowest of 3 reads:")
    for path, seconds in timings.items():
        print(f"  {path:32} {seconds * 1000:7.1f} ms")
    assert sum(overview["counts"].values()) == ORDERS
    assert overview["stuck"] and overview["stuck_total"] >= 1_000
    assert len(overview["recent"]) == 20
    slow = {path: seconds for path, seconds in timings.items() if seconds > BOUND_SECONDS}
    assert not slow, f"slower than {BOUND_SECONDS} s: {slow}"
