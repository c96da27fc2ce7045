"""After the faults: the drain (every order terminal, every outbox empty, no mail
pending), then the invariants, each read from the data of the service that owns it
(direct SQL on its own database) and from the topics, never from one service's view of
another's."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contracts.events.fulfilment import ShipmentCreated, Shipped
from contracts.events.inventory import StockReservationFailed, StockReserved
from contracts.events.notification import NotificationSent
from contracts.events.order import OrderPlaced, OrderRejected
from contracts.events.returns import RefundIssued
from contracts.wire import InvalidEvent, decode, header_map
from tests.e2e.system import SERVICES
from tests.faults.load import TERMINAL_STATUSES, Workload
from tests.faults.system import FaultySystem
from tests.kafka_tools import read_to_end

MESSAGE_REPEAT_WINDOW_SECONDS = 3.0
"""A mail handed to SMTP just before its sender was killed is sent again after the restart,
with the same Message-ID (the documented at-least-once case): a repeat whose first copy
arrived this long before a kill of the notification service is that case."""


async def _fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


@dataclass
class Drain:
    seconds: float
    complete: bool
    not_terminal: dict[str, str]
    unsent_outbox: dict[str, int]
    pending_notifications: int
    consumer_lag: dict[str, int]


async def _unsent_outbox(system: FaultySystem) -> dict[str, int]:
    counts: dict[str, int] = {}
    for service in SERVICES:
        rows = await _fetch(
            system.database_urls[service], "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"
        )
        counts[service] = int(rows[0]["n"])
    return counts


async def consumer_lag(system: FaultySystem) -> dict[str, int]:
    """Per service, how many records on its topics its consumer group has not committed:
    an empty outbox does not yet mean every consumer has caught up."""
    admin = AIOKafkaAdminClient(bootstrap_servers=system.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=system.bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        lag: dict[str, int] = {}
        for service in SERVICES:
            topics = sorted(set(system.names.consumed_by(service)))
            committed = await admin.list_consumer_group_offsets(
                system.names.consumer_group(service)
            )
            # The admin client's description, not a consumer's metadata: a consumer knows
            # the partitions of the topics it is assigned only, which would read as no lag.
            partitions = [
                TopicPartition(described["topic"], partition["partition"])
                for described in await admin.describe_topics(topics)
                for partition in described["partitions"]
            ]
            if not partitions:
                raise KafkaError(f"no partitions described for {service}'s topics")
            ends = await consumer.end_offsets(partitions)
            lag[service] = sum(
                end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
            )
        return lag
    finally:
        await consumer.stop()
        await admin.close()


@dataclass
class _Quiet:
    not_terminal: dict[str, str] = field(default_factory=dict)
    unsent: dict[str, int] = field(default_factory=dict)
    pending: int = -1

    @property
    def quiet(self) -> bool:
        return (
            self.pending == 0
            and not self.not_terminal
            and bool(self.unsent)
            and not any(self.unsent.values())
        )


async def _look(system: FaultySystem, workload: Workload) -> _Quiet:
    seen = _Quiet()
    try:
        statuses = await workload.refresh_statuses()
        seen.not_terminal = {
            order.external_order_id: statuses.get(order.external_order_id, ("", "missing"))[1]
            for order in workload.orders
            if statuses.get(order.external_order_id, ("", ""))[1] not in TERMINAL_STATUSES
        }
        seen.unsent = await _unsent_outbox(system)
        rows = await _fetch(
            system.database_urls["notification"],
            "SELECT count(*) AS n FROM notifications WHERE status = 'pending'",
        )
        seen.pending = int(rows[0]["n"])
    except (OSError, asyncpg.PostgresError, TimeoutError):
        pass  # a database still coming back: look again
    return seen


async def drain(system: FaultySystem, workload: Workload, timeout: float) -> Drain:
    """Waits until every order is terminal, every customer action made, every consumer
    caught up, every outbox empty and no notification pending; measured from the last
    fault injected."""
    started = system.faults.last_at or time.monotonic()
    deadline = time.monotonic() + timeout
    while True:
        seen = await _look(system, workload)
        lag: dict[str, int] = {}
        complete = seen.quiet and not workload.pending_actions
        if complete:
            try:
                lag = await consumer_lag(system)
            except KafkaError:
                lag = {"unknown": -1}
            if any(lag.values()):
                complete = False
            else:
                # What the last consumed records caused is committed by now: look again.
                seen = await _look(system, workload)
                complete = seen.quiet
        if complete or time.monotonic() > deadline:
            return Drain(
                seconds=round(time.monotonic() - started, 2),
                complete=complete,
                not_terminal=seen.not_terminal,
                unsent_outbox={k: v for k, v in seen.unsent.items() if v},
                pending_notifications=max(seen.pending, 0),
                consumer_lag={k: v for k, v in lag.items() if v},
            )
        await asyncio.sleep(0.5)


@dataclass
class Check:
    name: str
    violations: list[str] = field(default_factory=list)
    kind: str = "consistency"
    """lost | duplicated | consistency"""

    @property
    def ok(self) -> bool:
        return not self.violations

    def expect(self, condition: bool, violation: str) -> None:
        if not condition:
            self.violations.append(violation)


@dataclass
class Invariants:
    checks: list[Check]
    lost: int
    duplicated_effects: int
    figures: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            check.name: {
                "ok": check.ok,
                "kind": check.kind,
                "violations": len(check.violations),
                "examples": check.violations[:5],
            }
            for check in self.checks
        }


def _duplicates(counter: Counter[Any], what: str) -> Iterable[str]:
    return (f"{what} {key}: {count} times" for key, count in counter.items() if count > 1)


async def check_invariants(
    system: FaultySystem, workload: Workload, notification_kills: list[float]
) -> Invariants:
    urls = system.database_urls
    prefix = f"load-{workload.run_id}-%"
    checks: list[Check] = []

    # --- order: every submitted order accounted for exactly once, and terminal ----------
    orders = await _fetch(
        urls["order"],
        "SELECT external_order_id, order_id, status FROM orders WHERE external_order_id LIKE $1",
        prefix,
    )
    rows_per_external = Counter(row["external_order_id"] for row in orders)
    status_of = {row["external_order_id"]: row["status"] for row in orders}
    order_id_of = {row["external_order_id"]: row["order_id"] for row in orders}
    accounted = Check("every submitted order is placed or rejected", kind="lost")
    for order in workload.orders:
        accounted.expect(order.external_order_id in status_of, f"{order.external_order_id} missing")
    once = Check("one order per channel order", kind="duplicated")
    once.violations.extend(_duplicates(rows_per_external, "channel order"))
    terminal = Check("every order ends in a terminal state")
    for external_id, status in status_of.items():
        terminal.expect(status in TERMINAL_STATUSES, f"{external_id} is {status}")
    checks += [accounted, once, terminal]

    # --- the facts on the topics: one decision per cause ------------------------------
    topic_events = await _events(system)
    decisions = Counter(
        event.external_order_id
        for event in topic_events["oms.order.v1"]
        if isinstance(event, OrderPlaced | OrderRejected)
    )
    decided = Check("every channel order decided on the order topic", kind="lost")
    one_decision = Check("one OrderPlaced or OrderRejected per channel order", kind="duplicated")
    for order in workload.orders:
        count = decisions.get(order.external_order_id, 0)
        decided.expect(count >= 1, f"{order.external_order_id}: no decision")
        one_decision.expect(count <= 1, f"{order.external_order_id}: {count} decisions")
    reservation_events = Counter(
        event.order_id
        for event in topic_events["oms.inventory.v1"]
        if isinstance(event, StockReserved | StockReservationFailed)
    )
    one_reservation_event = Check("one reservation outcome event per order", kind="duplicated")
    one_reservation_event.violations.extend(_duplicates(reservation_events, "order"))
    shipment_events = Counter(
        (event.order_id, event.warehouse_id)
        for event in topic_events["oms.fulfilment.v1"]
        if isinstance(event, ShipmentCreated)
    )
    shipped_events = Counter(
        event.shipment_id
        for event in topic_events["oms.fulfilment.v1"]
        if isinstance(event, Shipped)
    )
    one_shipment_event = Check(
        "one ShipmentCreated per (order, warehouse), one Shipped per shipment", kind="duplicated"
    )
    one_shipment_event.violations.extend(_duplicates(shipment_events, "shipment"))
    one_shipment_event.violations.extend(_duplicates(shipped_events, "Shipped of"))
    refund_events = Counter(
        event.return_id
        for event in topic_events["oms.returns.v1"]
        if isinstance(event, RefundIssued)
    )
    one_refund_event = Check("one RefundIssued per return", kind="duplicated")
    one_refund_event.violations.extend(_duplicates(refund_events, "return"))
    sent_events = Counter(
        (event.cause_event_id, event.recipient, event.channel.value)
        for event in topic_events["oms.notification.v1"]
        if isinstance(event, NotificationSent)
    )
    one_sent_event = Check(
        "one NotificationSent per (cause, recipient, channel)", kind="duplicated"
    )
    one_sent_event.violations.extend(_duplicates(sent_events, "notification"))
    checks += [
        decided,
        one_decision,
        one_reservation_event,
        one_shipment_event,
        one_refund_event,
        one_sent_event,
    ]

    # --- inventory: one reservation per placed order; stock conserved -----------------
    reservations = await _fetch(urls["inventory"], "SELECT order_id, status FROM reservations")
    reservation_count = Counter(row["order_id"] for row in reservations)
    one_reservation = Check("exactly one reservation per placed order", kind="lost")
    for external_id, order_id in order_id_of.items():
        if status_of[external_id] == "rejected":
            continue
        one_reservation.expect(
            reservation_count.get(order_id, 0) == 1,
            f"{external_id} ({order_id}): {reservation_count.get(order_id, 0)} reservations",
        )
    checks.append(one_reservation)

    skus = list(workload.stock.initial)
    stock_rows = await _fetch(
        urls["inventory"],
        "SELECT sku, warehouse_id, on_hand, reserved FROM stock WHERE sku = ANY($1)",
        skus,
    )
    lines = await _fetch(
        urls["inventory"],
        "SELECT sku, warehouse_id, sum(reserved - committed - released) AS open, "
        "sum(committed) AS committed FROM reservation_lines WHERE sku = ANY($1) "
        "GROUP BY sku, warehouse_id",
        skus,
    )
    committed_movements = await _fetch(
        urls["inventory"],
        "SELECT sku, warehouse_id, sum(quantity) AS units FROM stock_movements "
        "WHERE kind = 'committed' AND sku = ANY($1) GROUP BY sku, warehouse_id",
        skus,
    )
    received = await _fetch(
        urls["inventory"],
        "SELECT sku, warehouse_id, sum(quantity) AS units FROM stock_movements "
        "WHERE kind = 'received' AND sku = ANY($1) GROUP BY sku, warehouse_id",
        skus,
    )
    shipments = await _fetch(
        urls["fulfilment"],
        "SELECT shipment_id, order_id, warehouse_id, status, lines FROM shipments",
    )
    completed_returns = await _fetch(
        urls["returns"],
        "SELECT r.return_id, r.order_id, r.receiving_warehouse_id, l.sku, "
        "l.received_quantity, l.restockable_quantity FROM returns r "
        "JOIN return_lines l USING (return_id) WHERE r.status = 'completed'",
    )
    shipped: Counter[tuple[str, str]] = Counter()
    shipped_per_order: dict[str, Counter[str]] = defaultdict(Counter)
    for shipment in shipments:
        if shipment["status"] in ("shipped", "delivered"):
            for line in _json(shipment["lines"]):
                shipped[(line["sku"], shipment["warehouse_id"])] += int(line["quantity"])
                shipped_per_order[shipment["order_id"]][line["sku"]] += int(line["quantity"])
    restocked: Counter[tuple[str, str]] = Counter()
    for line in completed_returns:
        restocked[(line["sku"], line["receiving_warehouse_id"])] += int(
            line["restockable_quantity"] or 0
        )
    open_lines = {(r["sku"], r["warehouse_id"]): int(r["open"]) for r in lines}
    # Units shipped after a cancellation released them are committed from free stock, not
    # from the reservation line: the stock movements hold every commitment.
    committed = {(r["sku"], r["warehouse_id"]): int(r["units"]) for r in committed_movements}
    received_units = {(r["sku"], r["warehouse_id"]): int(r["units"]) for r in received}
    conservation = Check("stock: initial + received - shipped + restocked == on hand")
    reserved_check = Check("stock: reserved == open reservation lines")
    committed_check = Check("stock: committed in inventory == shipped in fulfilment")
    receipts_once = Check("stock: every initial receipt applied once", kind="duplicated")
    stock_table: dict[str, dict[str, Any]] = {}
    for row in stock_rows:
        place = (row["sku"], row["warehouse_id"])
        initial = workload.stock.initial.get(row["sku"], {}).get(row["warehouse_id"], 0)
        extra_received = received_units.get(place, 0) - initial
        receipts_once.expect(extra_received == 0, f"{place}: received {extra_received} extra")
        expected = initial + extra_received - shipped[place] + restocked[place]
        conservation.expect(
            expected == row["on_hand"],
            f"{place}: {initial} + {extra_received} - {shipped[place]} + {restocked[place]}"
            f" = {expected}, on hand {row['on_hand']}",
        )
        reserved_check.expect(
            row["reserved"] == open_lines.get(place, 0),
            f"{place}: reserved {row['reserved']}, open lines {open_lines.get(place, 0)}",
        )
        committed_check.expect(
            committed.get(place, 0) == shipped[place],
            f"{place}: committed {committed.get(place, 0)}, shipped {shipped[place]}",
        )
        stock_table[f"{row['sku']}@{row['warehouse_id']}"] = {
            "initial": initial,
            "shipped": shipped[place],
            "restocked": restocked[place],
            "on_hand": row["on_hand"],
            "reserved": row["reserved"],
        }
    checks += [conservation, reserved_check, committed_check, receipts_once]

    # --- fulfilment: one shipment per (order, warehouse); what shipped is what was ordered
    per_place = Counter((s["order_id"], s["warehouse_id"]) for s in shipments)
    one_shipment = Check("exactly one shipment per (order, warehouse)", kind="duplicated")
    one_shipment.violations.extend(_duplicates(per_place, "shipment of"))
    ordered = await _fetch(
        urls["order"],
        "SELECT o.order_id, o.status, l.sku, l.quantity FROM order_lines l "
        "JOIN orders o USING (order_id) WHERE o.external_order_id LIKE $1",
        prefix,
    )
    ordered_per_order: dict[str, Counter[str]] = defaultdict(Counter)
    order_status = {}
    for line in ordered:
        ordered_per_order[line["order_id"]][line["sku"]] += int(line["quantity"])
        order_status[line["order_id"]] = line["status"]
    shipped_as_ordered = Check("shipped units == ordered units (at most, if cancelled)")
    cancel_raced_shipment = 0
    for order_id, wanted in ordered_per_order.items():
        got = shipped_per_order.get(order_id, Counter())
        if order_status[order_id] == "rejected":
            shipped_as_ordered.expect(not got, f"{order_id} rejected, shipped {got}")
        elif order_status[order_id] == "cancelled":
            # A cancellation accepted before the order service heard of the shipment
            # (they race by design): the goods went, the facts are kept, never more.
            cancel_raced_shipment += bool(got)
            shipped_as_ordered.expect(
                all(got[sku] <= wanted[sku] for sku in got),
                f"{order_id}: ordered {wanted}, shipped {got}",
            )
        elif order_status[order_id] in TERMINAL_STATUSES:
            shipped_as_ordered.expect(got == wanted, f"{order_id}: ordered {wanted}, shipped {got}")
    checks += [one_shipment, shipped_as_ordered]

    # --- returns: exactly one refund per completed return, in returns and in order -----
    refunds = await _fetch(urls["returns"], "SELECT return_id FROM refunds")
    order_refunds = await _fetch(urls["order"], "SELECT return_id FROM order_refunds")
    completed_ids = {line["return_id"] for line in completed_returns}
    refund_count = Counter(row["return_id"] for row in refunds)
    order_refund_count = Counter(row["return_id"] for row in order_refunds)
    one_refund = Check("exactly one refund per completed return", kind="duplicated")
    refund_lost = Check("every completed return refunded and known to the order", kind="lost")
    for return_id in completed_ids:
        one_refund.expect(refund_count[return_id] <= 1, f"{return_id}: {refund_count[return_id]}")
        one_refund.expect(
            order_refund_count[return_id] <= 1,
            f"{return_id} in order: {order_refund_count[return_id]}",
        )
        refund_lost.expect(refund_count[return_id] >= 1, f"{return_id}: no refund")
        refund_lost.expect(order_refund_count[return_id] >= 1, f"{return_id}: order has no refund")
    for external_id, return_id in workload.actions.returns_completed.items():
        refund_lost.expect(return_id in completed_ids, f"{external_id}: {return_id} not completed")
    checks += [one_refund, refund_lost]

    # --- notification: one per (cause, recipient, channel); SMTP saw each once --------
    notifications = await _fetch(
        urls["notification"],
        "SELECT notification_id, cause_event_id, recipient, channel, status FROM notifications",
    )
    per_cause = Counter((n["cause_event_id"], n["recipient"], n["channel"]) for n in notifications)
    one_notification = Check(
        "exactly one notification per (cause event, recipient, channel)", kind="duplicated"
    )
    one_notification.violations.extend(_duplicates(per_cause, "notification"))
    sent_mail_ids = {
        n["notification_id"]
        for n in notifications
        if n["channel"] == "email" and n["status"] == "sent"
    }
    received_ids = Counter(
        message_id.strip("<>").split("@", 1)[0] for _, message_id in system.mail.arrivals
    )
    mails_delivered = Check("every sent e-mail reached the SMTP server", kind="lost")
    for notification_id in sent_mail_ids:
        mails_delivered.expect(
            received_ids[notification_id] >= 1, f"{notification_id} not received"
        )
    stray_mail = Check("every mail received is a recorded notification", kind="duplicated")
    for notification_id in received_ids:
        stray_mail.expect(notification_id in sent_mail_ids, f"{notification_id} not recorded")
    repeats = _message_repeats(system.mail.arrivals)
    unexplained = [
        (message_id, first_at)
        for message_id, first_at in repeats
        if not any(
            kill - MESSAGE_REPEAT_WINDOW_SECONDS <= first_at <= kill for kill in notification_kills
        )
    ]
    no_repeat = Check(
        "no Message-ID received twice (beyond a resend after a kill)", kind="duplicated"
    )
    no_repeat.violations.extend(f"{message_id} repeated" for message_id, _ in unexplained)
    checks += [one_notification, mails_delivered, stray_mail, no_repeat]

    lost = sum(len(c.violations) for c in checks if c.kind == "lost")
    duplicated = sum(len(c.violations) for c in checks if c.kind == "duplicated")
    statuses = Counter(status_of.values())
    figures = {
        "statuses": dict(sorted(statuses.items())),
        "reservations": dict(Counter(row["status"] for row in reservations)),
        "shipments": len(shipments),
        "cancellations_that_raced_a_shipment": cancel_raced_shipment,
        "completed_returns": len(completed_ids),
        "refunds": len(refunds),
        "notifications": dict(Counter(n["status"] for n in notifications)),
        "emails_received": len(system.mail.arrivals),
        "smtp_message_id_repeats": len(repeats),
        "smtp_message_id_repeats_after_kill": len(repeats) - len(unexplained),
        "stock": stock_table,
    }
    return Invariants(checks=checks, lost=lost, duplicated_effects=duplicated, figures=figures)


def _message_repeats(arrivals: list[tuple[float, str]]) -> list[tuple[str, float]]:
    """(Message-ID, when its first copy arrived) for every further copy."""
    first: dict[str, float] = {}
    repeats = []
    for at, message_id in arrivals:
        if message_id in first:
            repeats.append((message_id, first[message_id]))
        first.setdefault(message_id, at)
    return repeats


def _json(value: Any) -> list[dict[str, Any]]:
    import json

    loaded = json.loads(value) if isinstance(value, str) else value
    assert isinstance(loaded, list)
    return loaded


async def _events(system: FaultySystem) -> dict[str, list[Any]]:
    """Every valid event on each service topic of the namespace, each event id once: a
    record re-published byte for byte is the same fact, not a second one."""
    found: dict[str, list[Any]] = {}
    for topic in (
        "oms.order.v1",
        "oms.inventory.v1",
        "oms.fulfilment.v1",
        "oms.returns.v1",
        "oms.notification.v1",
    ):
        unique: dict[Any, Any] = {}
        for record in await read_to_end(system.bootstrap, system.names.physical(topic)):
            try:
                event = decode(header_map(record.headers), record.value)
            except InvalidEvent:
                continue
            unique[event.event_id] = event
        found[topic] = list(unique.values())
    return found
