"""The returns service in-process against the real Kafka and PostgreSQL: order facts come
in as events, returns are driven over HTTP, and what it publishes is read back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.base import Event, Money
from contracts.events.common import Address, Customer, OrderLine, ShippingSpeed, SkuQuantity
from contracts.events.fulfilment import Delivered, Shipped
from contracts.events.order import OrderPlaced
from contracts.events.pricing import (
    Charge,
    ChargeKind,
    Discount,
    DiscountAllocation,
    DiscountKind,
    DiscountTarget,
    DiscountValueType,
    ShippingLine,
    TaxLine,
)
from contracts.events.returns import (
    RefundedLine,
    RefundIssued,
    Returned,
    ReturnReceived,
    ReturnRejected,
    ReturnRequested,
)
from services.kit.migrations import alembic_config
from services.kit.tables import outbox
from services.kit.topics import TopicNames
from services.returns import db
from services.returns.app import MIGRATIONS, ReturnsSettings, create_app
from services.returns.domain import REFUND_POLICY
from tests.infrastructure import Infrastructure
from tests.kafka_tools import eventually
from tests.schema import differences_from_the_code
from tests.service_harness import (
    events_on,
    fresh_namespace,
    publish_events,
    running_service,
    settings_environment,
)

pytestmark = pytest.mark.integration

RETURNS_TOPIC = "oms.returns.v1"
SHIPPING_CHARGE = 590
MUG_PRICE = 1200
TEE_PRICE = 2500
WAREHOUSE = "wh-paris-1"


@dataclass
class Scene:
    infrastructure: Infrastructure
    names: TopicNames
    client: httpx.AsyncClient
    database: AsyncEngine

    async def order_known(
        self,
        order: Callable[[str], OrderPlaced] | None = None,
        *,
        shipped_days_ago: float = 3,
        delivered_days_ago: float | None = 2,
    ) -> str:
        """Publishes a placed order (by default 3 mugs and 2 tees at list price), shipped
        in full and by default delivered, and waits until the service has recorded it."""
        order_id = f"ord_{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC)
        placement = (order or placed)(order_id)
        facts: list[Event] = [
            placement,
            Shipped(
                order_id=order_id,
                shipment_id=f"shp_{order_id}",
                warehouse_id=WAREHOUSE,
                carrier="colissimo",
                tracking_number=f"TRK{uuid.uuid4().hex[:10]}",
                lines=tuple(
                    SkuQuantity(sku=line.sku, quantity=line.quantity) for line in placement.lines
                ),
                shipped_at=now - timedelta(days=shipped_days_ago),
            ),
        ]
        if delivered_days_ago is not None:
            facts.append(
                Delivered(
                    order_id=order_id,
                    shipment_id=f"shp_{order_id}",
                    tracking_number="TRK1",
                    delivered_at=now - timedelta(days=delivered_days_ago),
                )
            )
        await publish_events(self.infrastructure, self.names, *facts)

        async def recorded() -> bool:
            async with self.database.connect() as connection:
                order = await db.load_order(connection, order_id)
            return (
                order is not None
                and order.placement is not None
                and bool(order.shipments)
                and (delivered_days_ago is None or order.shipments[0].delivered_at is not None)
            )

        await eventually(recorded, timeout=30)
        return order_id

    async def request(self, order_id: str, *lines: tuple[str, int, str]) -> httpx.Response:
        return await self.client.post(
            "/returns",
            json={
                "order_id": order_id,
                "lines": [
                    {"sku": sku, "quantity": quantity, "reason_code": reason}
                    for sku, quantity, reason in lines
                ],
            },
        )

    async def refund_for(self, order_id: str, *lines: tuple[str, int, str]) -> RefundIssued:
        """Requests, approves and receives (all restockable) a return of `lines`, and
        gives the refund it published."""
        requested = await self.request(order_id, *lines)
        assert requested.json()["status"] == "requested", requested.text
        return_id = requested.json()["return_id"]
        assert (await self.client.post(f"/returns/{return_id}/approve")).status_code == 200
        received = await self.client.post(
            f"/returns/{return_id}/receive",
            json={
                "lines": [
                    {"sku": sku, "quantity": quantity, "restockable_quantity": quantity}
                    for sku, quantity, _reason in lines
                ]
            },
        )
        assert received.status_code == 200, received.text
        refund = (await self.events_of(return_id, expect=5))[-1]
        assert isinstance(refund, RefundIssued)
        return refund

    async def events_of(self, return_id: str, expect: int) -> list[Event]:
        """The events published about one return, once `expect` of them are on the topic."""
        found: list[Event] = []

        async def published() -> bool:
            nonlocal found
            found = await events_on(
                self.infrastructure,
                self.names,
                RETURNS_TOPIC,
                expect=1,
                where=lambda event: getattr(event, "return_id", None) == return_id,
                timeout=5,
            )
            return len(found) >= expect

        await eventually(published, timeout=30)
        return found

    async def outbox_rows_for(self, order_id: str) -> int:
        async with self.database.connect() as connection:
            count = await connection.execute(
                select(func.count()).select_from(outbox).where(outbox.c.key == order_id)
            )
        return count.scalar_one()


def placed(order_id: str) -> OrderPlaced:
    def line(line_id: str, sku: str, quantity: int, price: int) -> OrderLine:
        return OrderLine(
            line_id=line_id,
            sku=sku,
            quantity=quantity,
            unit_price=Money(amount_minor=price, currency="EUR"),
            line_total=Money(amount_minor=price * quantity, currency="EUR"),
        )

    subtotal = 3 * MUG_PRICE + 2 * TEE_PRICE
    return OrderPlaced(
        order_id=order_id,
        channel="webshop",
        external_order_id=f"WS-{order_id}",
        customer=Customer(
            customer_id="cus_1", email="ada@example.com", name="Ada Lovelace", locale="en"
        ),
        lines=(line("1", "MUG", 3, MUG_PRICE), line("2", "TEE", 2, TEE_PRICE)),
        currency="EUR",
        subtotal=Money(amount_minor=subtotal, currency="EUR"),
        shipping_charge=Money(amount_minor=SHIPPING_CHARGE, currency="EUR"),
        total=Money(amount_minor=subtotal + SHIPPING_CHARGE, currency="EUR"),
        shipping_address=Address(
            name="Ada Lovelace",
            line1="12 rue de la Paix",
            city="Paris",
            postal_code="75002",
            country="FR",
        ),
        shipping_speed=ShippingSpeed.STANDARD,
        placed_at=datetime.now(UTC) - timedelta(days=5),
    )


def money(amount_minor: int, currency: str) -> Money:
    return Money(amount_minor=amount_minor, currency=currency)


def discount(
    discount_id: str,
    kind: DiscountKind,
    title: str,
    target: DiscountTarget,
    *,
    fixed: Money | None = None,
    percentage: str | None = None,
) -> Discount:
    return Discount(
        discount_id=discount_id,
        kind=kind,
        code=title if kind is DiscountKind.CODE else None,
        title=title,
        value_type=DiscountValueType.PERCENTAGE if percentage else DiscountValueType.FIXED_AMOUNT,
        percentage=percentage,
        amount=fixed,
        target=target,
    )


def allocation(of: Discount, amount: Money) -> DiscountAllocation:
    return DiscountAllocation(
        amount=amount, discount_id=of.discount_id, kind=of.kind, title=of.title
    )


def taxed_line(
    line_id: str,
    sku: str,
    quantity: int,
    unit_price: int,
    currency: str,
    allocations: tuple[DiscountAllocation, ...],
    tax: TaxLine,
    *,
    states_discounted_total: bool = True,
) -> OrderLine:
    line_total = unit_price * quantity
    discounted_total = line_total - sum(part.amount.amount_minor for part in allocations)
    return OrderLine(
        line_id=line_id,
        sku=sku,
        quantity=quantity,
        unit_price=money(unit_price, currency),
        line_total=money(line_total, currency),
        discount_allocations=allocations,
        discounted_total=money(discounted_total, currency) if states_discounted_total else None,
        tax_lines=(tax,),
    )


def placed_with(order_id: str, **money_of_the_order: Any) -> OrderPlaced:
    """An order of the webshop: its lines, currency and amounts are the caller's."""
    return OrderPlaced(
        order_id=order_id,
        channel="webshop",
        external_order_id=f"WS-{order_id}",
        customer=Customer(customer_id="cus_1", email="ada@example.com", locale="en"),
        shipping_address=Address(
            name="Ada Lovelace", line1="1 Main St", city="Austin", postal_code="78701", country="US"
        ),
        shipping_speed=ShippingSpeed.STANDARD,
        placed_at=datetime.now(UTC) - timedelta(days=5),
        **money_of_the_order,
    )


def placed_with_tax_added(order_id: str) -> OrderPlaced:
    """3 mugs at 12.00 with 10 % off them and their 3.00 share of a 5.00 order discount,
    2 tees at 25.00 with their 2.00 share, 9.90 of shipping with 5.00 off, 7.25 % tax
    added on top of each, and a 3.00 tip: 91.27 paid in all."""
    usd = "USD"
    mugs_off = discount("0", DiscountKind.CODE, "MUGS10", DiscountTarget.LINE, percentage="10")
    welcome = discount(
        "1", DiscountKind.CODE, "WELCOME5", DiscountTarget.ORDER, fixed=money(500, usd)
    )
    shipping_off = discount(
        "2",
        DiscountKind.AUTOMATIC,
        "Shipping 5 off",
        DiscountTarget.SHIPPING,
        fixed=money(500, usd),
    )

    def tax(amount: int) -> TaxLine:
        return TaxLine(title="State tax", rate="0.0725", amount=money(amount, usd))

    return placed_with(
        order_id,
        currency=usd,
        lines=(
            taxed_line(
                "1",
                "MUG",
                3,
                1200,
                usd,
                (allocation(mugs_off, money(360, usd)), allocation(welcome, money(300, usd))),
                tax(213),
            ),
            taxed_line("2", "TEE", 2, 2500, usd, (allocation(welcome, money(200, usd)),), tax(348)),
        ),
        discounts=(mugs_off, welcome, shipping_off),
        shipping_lines=(
            ShippingLine(
                title="Standard",
                price=money(990, usd),
                # No discounted_price: it is the price less the allocations.
                discount_allocations=(allocation(shipping_off, money(500, usd)),),
                tax_lines=(tax(36),),
            ),
        ),
        charges=(Charge(kind=ChargeKind.TIP, title="Tip", amount=money(300, usd)),),
        taxes_included=False,
        subtotal=money(8600, usd),
        total_discounts=money(1360, usd),
        shipping_charge=money(990, usd),
        total_tax=money(213 + 348 + 36, usd),
        total=money(8600 - 1360 + 990 + 300 + 597, usd),
    )


def placed_with_tax_included(order_id: str) -> OrderPlaced:
    """3 chairs at 89.00 less 10 % off the order, 5.90 of shipping, 20 % VAT included in
    every price: 246.20 paid in all."""
    eur = "EUR"
    spring = discount("0", DiscountKind.CODE, "SPRING10", DiscountTarget.ORDER, percentage="10")

    def vat(amount: int) -> TaxLine:
        return TaxLine(title="VAT", rate="0.2", amount=money(amount, eur))

    return placed_with(
        order_id,
        currency=eur,
        lines=(
            # No discounted_total: it is the line_total less the allocations.
            taxed_line(
                "1",
                "CHAIR",
                3,
                8900,
                eur,
                (allocation(spring, money(2670, eur)),),
                vat(4005),
                states_discounted_total=False,
            ),
        ),
        discounts=(spring,),
        shipping_lines=(
            ShippingLine(
                title="Standard",
                price=money(590, eur),
                discounted_price=money(590, eur),
                tax_lines=(vat(98),),
            ),
        ),
        taxes_included=True,
        subtotal=money(26700, eur),
        total_discounts=money(2670, eur),
        shipping_charge=money(590, eur),
        total_tax=money(4005 + 98, eur),
        total=money(26700 - 2670 + 590, eur),
    )


@pytest.fixture(scope="module")
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("returns")
    settings = ReturnsSettings(**settings_environment(infrastructure, names, database_url))
    assert settings.database_url == database_url, "the service must use the test database"
    database = create_async_engine(database_url)
    async with running_service(create_app(settings)) as client:
        yield Scene(infrastructure, names, client, database)
    await database.dispose()


async def test_a_return_goes_from_request_to_refund(scene: Scene) -> None:
    order_id = await scene.order_known()

    requested = await scene.request(order_id, ("MUG", 2, "damaged"))
    assert requested.status_code == 201, requested.text
    return_id = requested.json()["return_id"]
    assert requested.json()["status"] == "requested"

    approved = await scene.client.post(f"/returns/{return_id}/approve")
    assert approved.status_code == 200, approved.text
    label = approved.json()["label_reference"]
    assert approved.json()["status"] == "approved" and label.startswith("RL-")

    received = await scene.client.post(
        f"/returns/{return_id}/receive",
        json={
            "lines": [{"sku": "MUG", "quantity": 2, "restockable_quantity": 1, "note": "chipped"}]
        },
    )
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "completed"

    published = await scene.events_of(return_id, expect=5)
    assert [type(event).__name__ for event in published] == [
        "ReturnRequested",
        "ReturnApproved",
        "ReturnReceived",
        "Returned",
        "RefundIssued",
    ]
    request_event, approval, receipt, returned, refund = published
    assert isinstance(request_event, ReturnRequested)
    assert [(line.sku, line.quantity, line.reason_code.value) for line in request_event.lines] == [
        ("MUG", 2, "damaged")
    ]
    assert approval.label_reference == label  # type: ignore[attr-defined]
    assert isinstance(receipt, ReturnReceived)
    assert receipt.warehouse_id == WAREHOUSE
    assert [(line.sku, line.quantity, line.restockable_quantity) for line in receipt.lines] == [
        ("MUG", 2, 1)
    ]
    assert isinstance(returned, Returned)
    assert [(line.sku, line.quantity) for line in returned.lines] == [("MUG", 2)]
    assert isinstance(refund, RefundIssued)
    # Damaged is the merchant's fault: both mugs (restockable or not) and the shipping.
    assert refund.lines_amount == Money(amount_minor=2 * MUG_PRICE, currency="EUR")
    assert refund.shipping_refunded == Money(amount_minor=SHIPPING_CHARGE, currency="EUR")
    assert refund.amount == Money(amount_minor=2 * MUG_PRICE + SHIPPING_CHARGE, currency="EUR")
    assert refund.policy == f"{REFUND_POLICY}:merchant_fault"

    shown = (await scene.client.get(f"/returns/{return_id}")).json()
    assert shown["refund"]["refund_id"] == refund.refund_id
    assert shown["refund"]["amount_minor"] == 2 * MUG_PRICE + SHIPPING_CHARGE
    assert shown["received"] == [
        {"sku": "MUG", "quantity": 2, "restockable_quantity": 1, "note": "chipped"}
    ]
    listed = (await scene.client.get("/returns", params={"order_id": order_id})).json()
    assert [entry["return_id"] for entry in listed] == [return_id]


async def test_steps_from_the_wrong_state_are_refused_with_409(scene: Scene) -> None:
    order_id = await scene.order_known()
    return_id = (await scene.request(order_id, ("TEE", 1, "no_longer_needed"))).json()["return_id"]
    receive_body = {"lines": [{"sku": "TEE", "quantity": 1, "restockable_quantity": 1}]}

    early_receipt = await scene.client.post(f"/returns/{return_id}/receive", json=receive_body)
    assert early_receipt.status_code == 409
    assert early_receipt.json()["code"] == "return_not_approved"

    assert (await scene.client.post(f"/returns/{return_id}/approve")).status_code == 200
    second_approval = await scene.client.post(f"/returns/{return_id}/approve")
    assert second_approval.status_code == 409
    assert second_approval.json()["code"] == "return_not_requested"
    late_rejection = await scene.client.post(
        f"/returns/{return_id}/reject", json={"reasons": [{"message": "changed our mind"}]}
    )
    assert late_rejection.status_code == 409
    assert late_rejection.json()["code"] == "return_not_requested"

    assert (
        await scene.client.post(f"/returns/{return_id}/receive", json=receive_body)
    ).status_code == 200
    second_receipt = await scene.client.post(f"/returns/{return_id}/receive", json=receive_body)
    assert second_receipt.status_code == 409
    assert second_receipt.json()["code"] == "return_not_approved"

    published = await scene.events_of(return_id, expect=5)
    assert [type(event).__name__ for event in published] == [
        "ReturnRequested",
        "ReturnApproved",
        "ReturnReceived",
        "Returned",
        "RefundIssued",
    ]
    refund = published[-1]
    assert isinstance(refund, RefundIssued)
    assert refund.amount.amount_minor == TEE_PRICE
    assert refund.policy == f"{REFUND_POLICY}:not_refunded"


async def test_receipt_beyond_the_return_is_refused(scene: Scene) -> None:
    order_id = await scene.order_known()
    return_id = (await scene.request(order_id, ("MUG", 1, "other"))).json()["return_id"]
    await scene.client.post(f"/returns/{return_id}/approve")

    too_many = await scene.client.post(
        f"/returns/{return_id}/receive",
        json={"lines": [{"sku": "MUG", "quantity": 2, "restockable_quantity": 2}]},
    )
    other_sku = await scene.client.post(
        f"/returns/{return_id}/receive",
        json={"lines": [{"sku": "TEE", "quantity": 1, "restockable_quantity": 1}]},
    )
    assert (too_many.status_code, too_many.json()["code"]) == (409, "quantity_exceeds_return")
    assert (other_sku.status_code, other_sku.json()["code"]) == (409, "sku_not_in_return")
    shown = (await scene.client.get(f"/returns/{return_id}")).json()
    assert shown["status"] == "approved" and shown["refund"] is None


async def test_request_beyond_what_is_still_returnable_is_rejected_by_events(
    scene: Scene,
) -> None:
    order_id = await scene.order_known()
    first = await scene.request(order_id, ("MUG", 2, "no_longer_needed"))
    assert first.json()["status"] == "requested"

    refused = await scene.request(order_id, ("MUG", 2, "no_longer_needed"))
    assert refused.status_code == 201
    assert refused.json()["status"] == "rejected"
    assert [reason["code"] for reason in refused.json()["rejection_reasons"]] == [
        "quantity_exceeds_delivered"
    ]

    published = await scene.events_of(refused.json()["return_id"], expect=2)
    assert [type(event).__name__ for event in published] == ["ReturnRequested", "ReturnRejected"]
    rejection = published[1]
    assert isinstance(rejection, ReturnRejected)
    assert [(reason.code.value, reason.field) for reason in rejection.reasons] == [
        ("quantity_exceeds_delivered", "lines.0.quantity")
    ]


async def test_request_outside_the_return_window_is_rejected_by_events(scene: Scene) -> None:
    order_id = await scene.order_known(shipped_days_ago=42, delivered_days_ago=40)

    refused = await scene.request(order_id, ("MUG", 1, "no_longer_needed"))
    assert refused.status_code == 201
    assert refused.json()["status"] == "rejected"

    published = await scene.events_of(refused.json()["return_id"], expect=2)
    rejection = published[1]
    assert isinstance(rejection, ReturnRejected)
    assert [reason.code.value for reason in rejection.reasons] == ["outside_return_window"]


async def test_window_runs_from_shipping_while_undelivered(scene: Scene) -> None:
    order_id = await scene.order_known(shipped_days_ago=10, delivered_days_ago=None)
    accepted = await scene.request(order_id, ("TEE", 2, "not_as_described"))
    assert accepted.json()["status"] == "requested", accepted.text


async def test_staff_rejection_publishes_return_rejected(scene: Scene) -> None:
    order_id = await scene.order_known()
    return_id = (await scene.request(order_id, ("MUG", 1, "other"))).json()["return_id"]

    rejected = await scene.client.post(
        f"/returns/{return_id}/reject",
        json={"reasons": [{"code": "other", "message": "Used item, not returnable."}]},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    approval_after = await scene.client.post(f"/returns/{return_id}/approve")
    assert approval_after.status_code == 409

    published = await scene.events_of(return_id, expect=2)
    assert [type(event).__name__ for event in published] == ["ReturnRequested", "ReturnRejected"]
    # A rejected return holds nothing: all three mugs may still be returned.
    assert (await scene.request(order_id, ("MUG", 3, "other"))).json()["status"] == "requested"


async def test_unknown_order_or_return_is_404_without_events(scene: Scene) -> None:
    unknown_order = f"ord_{uuid.uuid4().hex[:12]}"
    response = await scene.request(unknown_order, ("MUG", 1, "other"))
    assert (response.status_code, response.json()["code"]) == (404, "order_not_found")
    assert await scene.outbox_rows_for(unknown_order) == 0
    shown = await scene.client.get("/returns/rma_missing")
    approved = await scene.client.post("/returns/rma_missing/approve")
    for answer in (shown, approved):
        assert (answer.status_code, answer.json()["code"]) == (404, "return_not_found")


async def test_malformed_requests_are_422_without_events(scene: Scene) -> None:
    order_id = await scene.order_known()
    repeated_sku = await scene.request(order_id, ("MUG", 1, "other"), ("MUG", 1, "damaged"))
    unknown_reason = await scene.request(order_id, ("MUG", 1, "too_expensive"))
    assert (repeated_sku.status_code, unknown_reason.status_code) == (422, 422)
    assert await scene.outbox_rows_for(order_id) == 0


async def test_auto_approval_approves_a_valid_request_at_once(
    infrastructure: Infrastructure,
) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("returns_auto")
    settings = ReturnsSettings(
        **settings_environment(infrastructure, names, database_url), returns_auto_approve=True
    )
    assert settings.database_url == database_url, "the service must use the test database"
    database = create_async_engine(database_url)
    try:
        async with running_service(create_app(settings)) as client:
            scene = Scene(infrastructure, names, client, database)
            order_id = await scene.order_known()
            response = await scene.request(
                order_id, ("MUG", 3, "no_longer_needed"), ("TEE", 2, "other")
            )
            assert response.json()["status"] == "approved", response.text
            return_id = response.json()["return_id"]
            received = await client.post(
                f"/returns/{return_id}/receive",
                json={
                    "lines": [
                        {"sku": "MUG", "quantity": 3, "restockable_quantity": 3},
                        {"sku": "TEE", "quantity": 2, "restockable_quantity": 0},
                    ]
                },
            )
            assert received.status_code == 200, received.text
            published = await scene.events_of(return_id, expect=5)
    finally:
        await database.dispose()
    assert [type(event).__name__ for event in published][:2] == [
        "ReturnRequested",
        "ReturnApproved",
    ]
    refund = published[-1]
    assert isinstance(refund, RefundIssued)
    # Everything came back: all lines and, once, the shipping charge.
    assert refund.amount.amount_minor == 3 * MUG_PRICE + 2 * TEE_PRICE + SHIPPING_CHARGE
    assert refund.policy == f"{REFUND_POLICY}:fully_returned"


async def test_receipt_waits_for_prices_and_asks_which_warehouse_when_split(
    scene: Scene,
) -> None:
    """Shipments (fulfilment topic) may be seen before OrderPlaced (order topic): a return
    can be requested on them, but receiving needs the prices; and when the returned SKUs
    left from two warehouses, the receiver must name the one that took the parcel."""
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    shipments = [("wh-a", "MUG", 3), ("wh-b", "TEE", 2)]
    await publish_events(
        scene.infrastructure,
        scene.names,
        *(
            Shipped(
                order_id=order_id,
                shipment_id=f"shp_{warehouse}",
                warehouse_id=warehouse,
                carrier="ups",
                tracking_number=f"TRK{warehouse}",
                lines=(SkuQuantity(sku=sku, quantity=quantity),),
                shipped_at=now - timedelta(days=2),
            )
            for warehouse, sku, quantity in shipments
        ),
    )

    async def both_shipments_recorded() -> bool:
        async with scene.database.connect() as connection:
            order = await db.load_order(connection, order_id)
        return order is not None and len(order.shipments) == 2

    await eventually(both_shipments_recorded, timeout=30)
    requested = await scene.request(order_id, ("MUG", 1, "other"), ("TEE", 1, "other"))
    assert requested.json()["status"] == "requested", requested.text
    return_id = requested.json()["return_id"]
    await scene.client.post(f"/returns/{return_id}/approve")
    receipt = {
        "lines": [
            {"sku": "MUG", "quantity": 1, "restockable_quantity": 1},
            {"sku": "TEE", "quantity": 1, "restockable_quantity": 1},
        ]
    }

    unpriced = await scene.client.post(f"/returns/{return_id}/receive", json=receipt)
    assert (unpriced.status_code, unpriced.json()["code"]) == (409, "order_prices_unknown")

    await publish_events(scene.infrastructure, scene.names, placed(order_id))

    async def prices_recorded() -> bool:
        async with scene.database.connect() as connection:
            order = await db.load_order(connection, order_id)
        return order is not None and order.placement is not None

    await eventually(prices_recorded, timeout=30)
    ambiguous = await scene.client.post(f"/returns/{return_id}/receive", json=receipt)
    assert (ambiguous.status_code, ambiguous.json()["code"]) == (
        409,
        "receiving_warehouse_unknown",
    )
    named = await scene.client.post(
        f"/returns/{return_id}/receive", json={"warehouse_id": "wh-a", **receipt}
    )
    assert named.status_code == 200, named.text

    published = await scene.events_of(return_id, expect=5)
    receipt_event, refund = published[2], published[4]
    assert isinstance(receipt_event, ReturnReceived) and receipt_event.warehouse_id == "wh-a"
    assert isinstance(refund, RefundIssued)
    assert refund.amount.amount_minor == MUG_PRICE + TEE_PRICE


# --- refunds of what was paid ------------------------------------------------------------


def breakdown(refund: RefundIssued) -> dict[str, int | None]:
    parts = {
        "amount": refund.amount,
        "lines_amount": refund.lines_amount,
        "shipping_refunded": refund.shipping_refunded,
        "goods_amount": refund.goods_amount,
        "tax_amount": refund.tax_amount,
        "shipping_amount": refund.shipping_amount,
    }
    return {name: None if part is None else part.amount_minor for name, part in parts.items()}


async def test_refunds_the_paid_share_of_discounted_lines_with_tax_added(scene: Scene) -> None:
    order_id = await scene.order_known(placed_with_tax_added)

    damaged = await scene.refund_for(order_id, ("MUG", 1, "damaged"))
    # A mug paid 9.80 after its discounts and 0.71 of tax; shipping 4.90 and 0.36 of tax.
    assert breakdown(damaged) == {
        "amount": 1051 + 526,
        "lines_amount": 1051,
        "shipping_refunded": 526,
        "goods_amount": 980,
        "tax_amount": 71 + 36,
        "shipping_amount": 490,
    }
    assert damaged.lines == (
        RefundedLine(sku="MUG", quantity=1, amount=money(1051, "USD"), tax=money(71, "USD")),
    )
    assert damaged.amount.currency == "USD"
    assert damaged.policy == f"{REFUND_POLICY}:merchant_fault"

    rest = await scene.refund_for(order_id, ("MUG", 2, "no_longer_needed"), ("TEE", 2, "other"))
    assert breakdown(rest) == {
        "amount": 2102 + 5148,
        "lines_amount": 2102 + 5148,
        "shipping_refunded": 0,
        "goods_amount": 1960 + 4800,
        "tax_amount": 142 + 348,
        "shipping_amount": 0,
    }
    assert [(line.sku, line.amount.amount_minor, line.tax.amount_minor) for line in rest.lines] == [
        ("MUG", 2102, 142),
        ("TEE", 5148, 348),
    ]
    assert rest.policy == f"{REFUND_POLICY}:already_refunded"
    # Everything came back: all that was paid is refunded but the tip.
    tip = 300
    refunded = damaged.amount.amount_minor + rest.amount.amount_minor
    assert refunded == placed_with_tax_added(order_id).total.amount_minor - tip


async def test_refunds_prices_that_include_tax_with_the_tax_within(scene: Scene) -> None:
    order_id = await scene.order_known(placed_with_tax_included)

    first = await scene.refund_for(order_id, ("CHAIR", 1, "no_longer_needed"))
    rest = await scene.refund_for(order_id, ("CHAIR", 2, "not_as_described"))

    # A chair paid 80.10 after the order discount, 13.35 of it VAT.
    assert breakdown(first) == {
        "amount": 8010,
        "lines_amount": 8010,
        "shipping_refunded": 0,
        "goods_amount": 6675,
        "tax_amount": 1335,
        "shipping_amount": 0,
    }
    assert breakdown(rest) == {
        "amount": 16020 + 590,
        "lines_amount": 16020,
        "shipping_refunded": 590,
        "goods_amount": 13350,
        "tax_amount": 2670 + 98,
        "shipping_amount": 492,
    }
    total = placed_with_tax_included(order_id).total.amount_minor
    assert first.amount.amount_minor + rest.amount.amount_minor == total

    shown = (await scene.client.get(f"/returns/{rest.return_id}")).json()["refund"]
    assert shown == {
        "refund_id": rest.refund_id,
        "currency": "EUR",
        "amount_minor": 16610,
        "lines_amount_minor": 16020,
        "shipping_refunded_minor": 590,
        "goods_amount_minor": 13350,
        "tax_amount_minor": 2768,
        "shipping_amount_minor": 492,
        "lines": [{"sku": "CHAIR", "quantity": 2, "amount_minor": 16020, "tax_minor": 2670}],
        "policy": f"{REFUND_POLICY}:merchant_fault",
    }


# --- the schema ------------------------------------------------------------------------


async def test_the_migrations_create_exactly_the_tables_of_the_code(scene: Scene) -> None:
    assert await differences_from_the_code(scene.database, db.metadata) == []


async def stored_before_paid_amounts(database_url: str, order_id: str) -> AsyncEngine:
    """A database at the first schema holding a shipped and delivered order of 3 mugs at
    11.99 and 2 tees at 25.00, one mug of it already returned damaged and refunded with
    the shipping."""
    await asyncio.to_thread(
        command.upgrade, alembic_config(database_url, MIGRATIONS), "returns_0001"
    )
    now = datetime.now(UTC)
    rows: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO orders VALUES (:order_id, 'EUR', 590, 'cus_1', :placed_at)",
            {"placed_at": now - timedelta(days=5)},
        ),
        (
            "INSERT INTO order_lines VALUES"
            " (:order_id, '1', 'MUG', 3, 1199), (:order_id, '2', 'TEE', 2, 2500)",
            {},
        ),
        (
            "INSERT INTO shipments VALUES (:order_id, 'shp_old', :warehouse, :shipped_at)",
            {"warehouse": WAREHOUSE, "shipped_at": now - timedelta(days=3)},
        ),
        (
            "INSERT INTO shipment_lines VALUES"
            " (:order_id, 'shp_old', 'MUG', 3), (:order_id, 'shp_old', 'TEE', 2)",
            {},
        ),
        (
            "INSERT INTO deliveries VALUES (:order_id, 'shp_old', :delivered_at)",
            {"delivered_at": now - timedelta(days=2)},
        ),
        (
            "INSERT INTO returns (return_id, order_id, status, requested_at, label_reference,"
            " receiving_warehouse_id) VALUES"
            " (:return_id, :order_id, 'completed', :requested_at, 'RL-OLD', :warehouse)",
            {"requested_at": now - timedelta(days=1), "warehouse": WAREHOUSE},
        ),
        (
            "INSERT INTO return_lines VALUES (:return_id, 'MUG', 1, 'damaged', 1, 0, NULL)",
            {},
        ),
        (
            "INSERT INTO refunds (refund_id, return_id, order_id, currency, lines_amount_minor,"
            " shipping_refunded_minor, amount_minor, policy) VALUES"
            " ('rf_old', :return_id, :order_id, 'EUR', 1199, 590, 1789, 'old:merchant_fault')",
            {},
        ),
    ]
    database = create_async_engine(database_url)
    keys = {"order_id": order_id, "return_id": f"rma_{order_id}"}
    async with database.begin() as connection:
        for statement, values in rows:
            await connection.execute(text(statement), {**keys, **values})
    return database


async def test_an_order_stored_before_paid_amounts_refunds_at_its_unit_price(
    infrastructure: Infrastructure,
) -> None:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("returns_old")
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    database = await stored_before_paid_amounts(database_url, order_id)
    settings = ReturnsSettings(**settings_environment(infrastructure, names, database_url))
    try:
        async with running_service(create_app(settings)) as client:
            scene = Scene(infrastructure, names, client, database)
            old = (await client.get(f"/returns/rma_{order_id}")).json()["refund"]
            refund = await scene.refund_for(order_id, ("MUG", 2, "damaged"), ("TEE", 1, "other"))
    finally:
        await database.dispose()
    assert (old["amount_minor"], old["goods_amount_minor"], old["tax_amount_minor"]) == (
        1789,
        1199,
        0,
    )
    assert (old["shipping_amount_minor"], old["lines"]) == (590, [])
    assert breakdown(refund) == {
        "amount": 2 * 1199 + 2500,
        "lines_amount": 2 * 1199 + 2500,
        "shipping_refunded": 0,
        "goods_amount": 2 * 1199 + 2500,
        "tax_amount": 0,
        "shipping_amount": 0,
    }
    assert refund.policy == f"{REFUND_POLICY}:already_refunded"


async def test_the_migration_to_paid_amounts_can_be_undone(infrastructure: Infrastructure) -> None:
    database_url = await infrastructure.create_database("returns_down")
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    database = await stored_before_paid_amounts(database_url, order_id)
    config = alembic_config(database_url, MIGRATIONS)

    async def read(query: str) -> tuple[Any, ...]:
        async with database.connect() as connection:
            return tuple((await connection.execute(text(query))).one())

    try:
        await asyncio.to_thread(command.upgrade, config, "returns_0002")
        assert await read(
            "SELECT paid_minor, tax_minor, shipping_paid_minor, shipping_tax_minor"
            " FROM order_lines JOIN orders USING (order_id) WHERE line_id = '1'"
        ) == (3 * 1199, 0, 590, 0)

        await asyncio.to_thread(command.downgrade, config, "returns_0001")
        assert await read(
            "SELECT unit_price_minor, shipping_charge_minor"
            " FROM order_lines JOIN orders USING (order_id) WHERE line_id = '1'"
        ) == (1199, 590)
    finally:
        await database.dispose()
