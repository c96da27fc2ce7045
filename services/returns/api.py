"""HTTP commands and queries of the returns service.

Answers: 201 with the return for a request (its `status` is `rejected`, with reasons,
when the request failed the return check: the refusal is recorded and published as
events, see service.py); 200 with the return for the other commands and queries; 404
`{code, message}` for an unknown order or return; 409 `{code, message}` for a command
the return's state refuses; 422 for a malformed body.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, model_validator

from contracts.base import OrderId, Quantity, Sku
from contracts.events.common import Note, ReturnId, WarehouseId
from contracts.events.returns import ReturnReasonCode, ReturnRejectionCode
from services.kit.runtime import ServiceRuntime
from services.kit.text import without_nul
from services.returns import domain, service

Text = Annotated[Note, AfterValidator(without_nul)]
# Ids in the path have the shape of the ids the service hands out: anything else is a
# malformed request (422), never a database lookup.
ReturnPath = Annotated[ReturnId, Path()]


class RequestLineBody(BaseModel):
    sku: Sku
    quantity: Quantity
    reason_code: ReturnReasonCode


class ReturnRequestBody(BaseModel):
    order_id: OrderId
    lines: list[RequestLineBody] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> Self:
        _refuse_repeated_skus(line.sku for line in self.lines)
        return self


class RejectionReasonBody(BaseModel):
    code: ReturnRejectionCode = ReturnRejectionCode.OTHER
    message: Text
    field: Annotated[str, AfterValidator(without_nul)] | None = Field(default=None, max_length=256)


class RejectionBody(BaseModel):
    reasons: list[RejectionReasonBody] = Field(min_length=1, max_length=100)


class ReceivedLineBody(BaseModel):
    sku: Sku
    quantity: Quantity
    restockable_quantity: int = Field(ge=0, le=1_000_000)
    note: Text | None = None

    @model_validator(mode="after")
    def _restockable_within_received(self) -> Self:
        if self.restockable_quantity > self.quantity:
            raise ValueError("restockable_quantity exceeds quantity")
        return self


class ReceiptBody(BaseModel):
    warehouse_id: WarehouseId | None = Field(
        default=None,
        description="Warehouse that received the parcel; by default the one the SKUs "
        "shipped from (required when they shipped from several)",
    )
    lines: list[ReceivedLineBody] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> Self:
        _refuse_repeated_skus(line.sku for line in self.lines)
        return self


def _refuse_repeated_skus(skus: Iterable[str]) -> None:
    seen: set[str] = set()
    for sku in skus:
        if sku in seen:
            raise ValueError(f"SKU {sku} appears on more than one line")
        seen.add(sku)


class RequestLineView(BaseModel):
    sku: str
    quantity: int
    reason_code: str


class RejectionReasonView(BaseModel):
    code: str
    field: str | None
    message: str


class ReceivedLineView(BaseModel):
    sku: str
    quantity: int
    restockable_quantity: int
    note: str | None


class RefundedLineView(BaseModel):
    sku: str
    quantity: int
    amount_minor: int = Field(description="Refunded for these units, tax included")
    tax_minor: int = Field(description="The tax within amount_minor")


class RefundView(BaseModel):
    """amount = lines_amount + shipping_refunded = goods_amount + tax_amount + shipping_amount
    (all in minor units of `currency`)."""

    refund_id: str
    currency: str
    amount_minor: int
    lines_amount_minor: int = Field(description="For the returned units, tax included")
    shipping_refunded_minor: int = Field(description="For shipping, tax included")
    goods_amount_minor: int = Field(description="For the returned units, net of tax")
    tax_amount_minor: int = Field(description="Tax refunded, of the units and of shipping")
    shipping_amount_minor: int = Field(description="For shipping, net of tax")
    lines: list[RefundedLineView] = Field(
        description="Per returned SKU (empty for refunds issued before it was kept)"
    )
    policy: str

    @classmethod
    def of(cls, refund: domain.Refund) -> RefundView:
        return cls(
            refund_id=refund.refund_id,
            currency=refund.currency,
            amount_minor=refund.amount_minor,
            lines_amount_minor=refund.lines_amount_minor,
            shipping_refunded_minor=refund.shipping_refunded_minor,
            goods_amount_minor=refund.goods_amount_minor,
            tax_amount_minor=refund.tax_amount_minor,
            shipping_amount_minor=refund.shipping_amount_minor,
            lines=[
                RefundedLineView(
                    sku=line.sku,
                    quantity=line.quantity,
                    amount_minor=line.refunded.amount_minor,
                    tax_minor=line.refunded.tax_minor,
                )
                for line in refund.lines
            ],
            policy=refund.policy,
        )


class ReturnView(BaseModel):
    return_id: str
    order_id: str
    status: domain.ReturnStatus
    requested_at: datetime
    lines: list[RequestLineView]
    label_reference: str | None
    rejection_reasons: list[RejectionReasonView]
    receiving_warehouse_id: str | None
    received: list[ReceivedLineView]
    refund: RefundView | None

    @classmethod
    def of(cls, rma: domain.Return) -> ReturnView:
        return cls(
            return_id=rma.return_id,
            order_id=rma.order_id,
            status=rma.status,
            requested_at=rma.requested_at,
            lines=[
                RequestLineView(sku=line.sku, quantity=line.quantity, reason_code=line.reason)
                for line in rma.lines
            ],
            label_reference=rma.label_reference,
            rejection_reasons=[
                RejectionReasonView(code=reason.code, field=reason.field, message=reason.message)
                for reason in rma.rejection_reasons
            ],
            receiving_warehouse_id=rma.receiving_warehouse_id,
            received=[
                ReceivedLineView(
                    sku=line.sku,
                    quantity=line.quantity,
                    restockable_quantity=line.restockable_quantity,
                    note=line.note,
                )
                for line in rma.received
            ],
            refund=None if rma.refund is None else RefundView.of(rma.refund),
        )


class ErrorView(BaseModel):
    code: str
    message: str


def _error(status_code: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=status_code, content=ErrorView(code=code, message=message).model_dump()
    )


def _answer(result: service.CommandResult) -> ReturnView | JSONResponse:
    if isinstance(result, service.ReturnNotFound):
        return _error(404, "return_not_found", f"No return {result.return_id}.")
    if isinstance(result, domain.CommandRefusal):
        return _error(409, result.code.value, result.message)
    return ReturnView.of(result)


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorView, "description": "Unknown order or return"}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorView, "description": "Refused in the return's current state"}
}


def build_router(runtime: ServiceRuntime, policy: service.ReturnPolicy) -> APIRouter:
    router = APIRouter(prefix="/returns", tags=["returns"])

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=ReturnView,
        responses=NOT_FOUND,
        summary="Ask to return units of a shipped order",
    )
    async def request_return(body: ReturnRequestBody) -> ReturnView | JSONResponse:
        lines = [
            domain.RequestedLine(line.sku, line.quantity, domain.ReturnReason(line.reason_code))
            for line in body.lines
        ]
        async with runtime.unit_of_work() as uow:
            result = await service.request_return(
                uow, order_id=body.order_id, lines=lines, policy=policy, now=datetime.now(UTC)
            )
        if isinstance(result, service.OrderNotFound):
            return _error(404, "order_not_found", f"No shipped or placed order {result.order_id}.")
        return ReturnView.of(result)

    @router.post(
        "/{return_id}/approve",
        response_model=ReturnView,
        responses={**NOT_FOUND, **REFUSED},
        summary="Approve a requested return and issue its label",
    )
    async def approve_return(return_id: ReturnPath) -> ReturnView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            result = await service.approve_return(uow, return_id)
        return _answer(result)

    @router.post(
        "/{return_id}/reject",
        response_model=ReturnView,
        responses={**NOT_FOUND, **REFUSED},
        summary="Refuse a requested return",
    )
    async def reject_return(
        return_id: ReturnPath, body: RejectionBody
    ) -> ReturnView | JSONResponse:
        reasons = [
            domain.Refusal(domain.RejectionCode(reason.code), reason.message, reason.field)
            for reason in body.reasons
        ]
        async with runtime.unit_of_work() as uow:
            result = await service.reject_return(uow, return_id, reasons)
        return _answer(result)

    @router.post(
        "/{return_id}/receive",
        response_model=ReturnView,
        responses={**NOT_FOUND, **REFUSED},
        summary="Record the returned parcel and its inspection; settles and refunds",
    )
    async def receive_return(return_id: ReturnPath, body: ReceiptBody) -> ReturnView | JSONResponse:
        received = [
            domain.ReceivedLine(line.sku, line.quantity, line.restockable_quantity, line.note)
            for line in body.lines
        ]
        async with runtime.unit_of_work() as uow:
            result = await service.receive_return(
                uow, return_id, warehouse_id=body.warehouse_id, received=received
            )
        return _answer(result)

    @router.get(
        "/{return_id}", response_model=ReturnView, responses=NOT_FOUND, summary="One return"
    )
    async def get_return(return_id: ReturnPath) -> ReturnView | JSONResponse:
        async with runtime.engine.connect() as connection:
            rma = await service.find_return(connection, return_id)
        if rma is None:
            return _error(404, "return_not_found", f"No return {return_id}.")
        return ReturnView.of(rma)

    @router.get("", summary="The returns of an order, oldest first")
    async def list_returns(order_id: Annotated[OrderId, Query()]) -> list[ReturnView]:
        async with runtime.engine.connect() as connection:
            found = await service.returns_of_order(connection, order_id)
        return [ReturnView.of(rma) for rma in found]

    return router
