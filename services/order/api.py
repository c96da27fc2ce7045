"""The order service's HTTP API: the product catalogue, orders placed by sales
representatives, customer-service commands (cancel, change the shipping address) and
queries. Commands refused in the order's current state answer 409 with a `code`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts.base import CurrencyCode, Money, Sku, UtcDatetime, utc_now
from contracts.events.channel import OrderSubmitted
from contracts.events.common import (
    Actor,
    Address,
    Channel,
    Customer,
    ExternalOrderId,
    Name,
    Note,
    OrderLine,
    ShippingSpeed,
)
from contracts.events.order import CancellationReason
from services.kit.runtime import ServiceRuntime
from services.kit.unit_of_work import UnitOfWork
from services.order import service
from services.order.domain import OrderStatus, Refusal
from services.order.service import (
    ChangeCause,
    CommandOutcome,
    IntakeOutcome,
    IntakePolicy,
    UnknownOrder,
)
from services.order.views import OrderSummary, OrderView, ProductView, RejectionReasonView


class Problem(BaseModel):
    code: str = Field(description="Machine-readable reason", examples=["already_shipped"])
    message: str


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    active: bool = Field(description="Whether the product can be ordered")


class OrderSubmission(BaseModel):
    """An order entered on a customer's behalf: the fields of OrderSubmitted, with the
    sales representative required."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    external_order_id: ExternalOrderId
    customer: Customer
    lines: tuple[OrderLine, ...] = Field(min_length=1, max_length=500)
    currency: CurrencyCode
    subtotal: Money
    shipping_charge: Money
    total: Money
    shipping_address: Address
    shipping_speed: ShippingSpeed
    placed_by: Actor
    submitted_at: UtcDatetime | None = Field(
        default=None, description="When the customer ordered; now when not given"
    )
    notes: Note | None = None


class OrderRejectedAnswer(BaseModel):
    code: str = "order_rejected"
    order_id: str
    reasons: list[RejectionReasonView]


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: CancellationReason
    cancelled_by: Actor
    note: Note | None = None


class AddressChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shipping_address: Address
    changed_by: Actor


UNPROCESSABLE = 422

REFUSED: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"model": Problem, "description": "No such order"},
    status.HTTP_409_CONFLICT: {"model": Problem, "description": "Refused in this state"},
}


def router(runtime: ServiceRuntime, policy: IntakePolicy) -> APIRouter:
    api = APIRouter()

    @api.put("/products/{sku}", tags=["products"], summary="Add or update a sellable product")
    async def put_product(sku: Annotated[Sku, Path()], update: ProductUpdate) -> ProductView:
        async with runtime.unit_of_work() as uow:
            return await service.set_product(uow, sku, name=update.name, active=update.active)

    @api.get("/products", tags=["products"], summary="The product catalogue")
    async def get_products() -> list[ProductView]:
        async with runtime.unit_of_work() as uow:
            return await service.list_products(uow)

    @api.post(
        "/orders",
        tags=["orders"],
        summary="Place an order on a customer's behalf",
        response_model=OrderView,
        status_code=status.HTTP_201_CREATED,
        responses={
            status.HTTP_200_OK: {"model": OrderView, "description": "Already submitted"},
            UNPROCESSABLE: {
                "model": OrderRejectedAnswer,
                "description": "Rejected (OrderRejected is emitted), or not a valid body",
            },
        },
    )
    async def post_order(submission: OrderSubmission) -> OrderView | JSONResponse:
        submitted = OrderSubmitted(
            channel=submission.channel,
            external_order_id=submission.external_order_id,
            customer=submission.customer,
            lines=submission.lines,
            currency=submission.currency,
            subtotal=submission.subtotal,
            shipping_charge=submission.shipping_charge,
            total=submission.total,
            shipping_address=submission.shipping_address,
            shipping_speed=submission.shipping_speed,
            submitted_at=submission.submitted_at or utc_now(),
            placed_by=submission.placed_by,
            notes=submission.notes,
        )
        cause = ChangeCause(actor=submission.placed_by, command="submit_order")
        async with runtime.unit_of_work() as uow:
            result = await service.submit_order(uow, submitted, policy, cause)
            view = await service.order_view(uow, result.order_id)
        if view is None:
            return _not_found(result.order_id)
        if result.outcome is IntakeOutcome.REJECTED:
            answer = OrderRejectedAnswer(order_id=view.order_id, reasons=view.rejection_reasons)
            return JSONResponse(answer.model_dump(mode="json"), UNPROCESSABLE)
        if result.outcome is IntakeOutcome.DUPLICATE:
            return JSONResponse(view.model_dump(mode="json"), status.HTTP_200_OK)
        return view

    @api.post(
        "/orders/{order_id}/cancel",
        tags=["orders"],
        summary="Cancel an order before anything has shipped",
        response_model=OrderView,
        responses=REFUSED,
    )
    async def cancel(order_id: str, request: CancelRequest) -> OrderView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.cancel_order(
                uow,
                order_id,
                reason=request.reason,
                cancelled_by=request.cancelled_by,
                note=request.note,
            )
            return await _answer(uow, outcome, order_id)

    @api.post(
        "/orders/{order_id}/shipping-address",
        tags=["orders"],
        summary="Change where the order goes, before anything has shipped",
        response_model=OrderView,
        responses=REFUSED,
    )
    async def change_address(
        order_id: str, request: AddressChangeRequest
    ) -> OrderView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.change_shipping_address(
                uow,
                order_id,
                shipping_address=request.shipping_address,
                changed_by=request.changed_by,
            )
            return await _answer(uow, outcome, order_id)

    @api.get(
        "/orders/{order_id}",
        tags=["orders"],
        summary="One order",
        response_model=OrderView,
        responses=REFUSED,
    )
    async def get_order(order_id: str) -> OrderView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            view = await service.order_view(uow, order_id)
        return view if view is not None else _not_found(order_id)

    @api.get("/orders", tags=["orders"], summary="Orders, newest first")
    async def list_orders(
        channel: str | None = None,
        external_order_id: str | None = None,
        order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[OrderSummary]:
        async with runtime.unit_of_work() as uow:
            return await service.order_summaries(
                uow,
                channel=channel,
                external_order_id=external_order_id,
                status=order_status,
                limit=limit,
            )

    return api


async def _answer(
    uow: UnitOfWork, outcome: CommandOutcome, order_id: str
) -> OrderView | JSONResponse:
    if isinstance(outcome, UnknownOrder):
        return _not_found(order_id)
    if isinstance(outcome, Refusal):
        return JSONResponse(
            Problem(code=outcome.code.value, message=outcome.message).model_dump(),
            status.HTTP_409_CONFLICT,
        )
    view = await service.order_view(uow, order_id)
    return view if view is not None else _not_found(order_id)


def _not_found(order_id: str) -> JSONResponse:
    return JSONResponse(
        Problem(code="order_not_found", message=f"no order {order_id}").model_dump(),
        status.HTTP_404_NOT_FOUND,
    )
