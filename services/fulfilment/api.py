"""HTTP commands of warehouses and carriers, and shipment queries.

Answers: 200 with the shipment; 404 `{"code": "shipment_not_found"}` for an unknown
shipment or tracking number; 409 `{"code": ..., "message": ...}` for a step the shipment
cannot take now (codes in `domain.refusal_of`: `shipment_cancelled`, `already_<status>`,
`not_<status>`); 422 for a malformed request. Repeating a warehouse step is refused with
`already_<status>`; repeating a carrier's delivery report is a 200 that changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from contracts.base import Identifier, OrderId
from contracts.events.common import ShipmentId
from contracts.events.fulfilment import TrackingNumber
from services.fulfilment import service
from services.fulfilment.db import Shipment
from services.fulfilment.domain import MAX_PACKAGE_WEIGHT_GRAMS, Refusal
from services.fulfilment.service import CommandOutcome, FulfilmentRules
from services.kit.runtime import ServiceRuntime


class Problem(BaseModel):
    code: str = Field(description="Machine-readable reason", examples=["not_packed"])
    message: str


class LineView(BaseModel):
    sku: str
    quantity: int


class PackageView(BaseModel):
    package_id: str
    weight_grams: int


class MoneyView(BaseModel):
    amount_minor: int
    currency: str


class ShipmentView(BaseModel):
    shipment_id: str
    order_id: str
    warehouse_id: str
    warehouse_country: str | None = Field(
        description="Country of the warehouse, as its reservation named it; null for a "
        "shipment reserved before reservations did"
    )
    reservation_id: str
    status: str = Field(examples=["packed"])
    lines: list[LineView]
    shipping_speed: str
    carrier: str
    shipping_method: str
    shipping_cost: MoneyView
    international: bool | None = Field(
        description="True when the parcel leaves the warehouse's country; null for a "
        "shipment planned before this was recorded"
    )
    shipping_address: dict[str, Any] | None = Field(
        description="Null for a pickup (carrier `pickup`): the customer collects it"
    )
    customer_locale: str
    notes: str | None = Field(description="The customer's notes on the order, for the packer")
    tracking_number: str | None
    packages: list[PackageView] | None
    created_at: datetime
    picked_at: datetime | None
    packed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: str | None
    next_step_at: datetime | None = Field(
        description="When the automatic mode would take the next step"
    )

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentView:
        return cls(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            warehouse_id=shipment.warehouse_id,
            warehouse_country=shipment.warehouse_country,
            reservation_id=shipment.reservation_id,
            status=shipment.status.value,
            lines=[LineView(sku=line.sku, quantity=line.quantity) for line in shipment.lines],
            shipping_speed=shipment.shipping_speed,
            carrier=shipment.carrier,
            shipping_method=shipment.shipping_method,
            shipping_cost=MoneyView(
                amount_minor=shipment.shipping_cost_minor,
                currency=shipment.shipping_cost_currency,
            ),
            international=shipment.international,
            shipping_address=shipment.shipping_address,
            customer_locale=shipment.customer_locale,
            notes=shipment.notes,
            tracking_number=shipment.tracking_number,
            packages=(
                [
                    PackageView(package_id=parcel.package_id, weight_grams=parcel.weight_grams)
                    for parcel in shipment.packages
                ]
                if shipment.packages is not None
                else None
            ),
            created_at=shipment.created_at,
            picked_at=shipment.picked_at,
            packed_at=shipment.packed_at,
            shipped_at=shipment.shipped_at,
            delivered_at=shipment.delivered_at,
            cancelled_at=shipment.cancelled_at,
            cancellation_reason=shipment.cancellation_reason,
            next_step_at=shipment.next_step_at,
        )


class PackageRequest(BaseModel):
    package_id: Identifier | None = Field(
        default=None, description="Defaults to `pkg_<position>`", examples=["pkg_1"]
    )
    weight_grams: int = Field(gt=0, le=MAX_PACKAGE_WEIGHT_GRAMS, examples=[1250])


class PackRequest(BaseModel):
    packages: list[PackageRequest] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _package_ids_unique(self) -> PackRequest:
        named = [package.package_id for package in self.packages if package.package_id]
        if len(named) != len(set(named)):
            raise ValueError("package ids must be unique within the shipment")
        return self


# Ids in the path have the shape of the ids the service hands out: anything else is a
# malformed request (422), never a database lookup.
ShipmentPath = Annotated[ShipmentId, Path()]


class TrackingUpdate(BaseModel):
    tracking_number: TrackingNumber
    status: Literal["delivered"] = Field(description="Only deliveries are acted upon")
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the carrier delivered; defaults to now"
    )


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Unknown shipment"}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "Not possible in the shipment's state"}
}


def _answer(outcome: CommandOutcome, *, unknown: str) -> ShipmentView | JSONResponse:
    if outcome is None:
        return JSONResponse(
            status_code=404, content={"code": "shipment_not_found", "message": unknown}
        )
    if isinstance(outcome, Refusal):
        return JSONResponse(
            status_code=409, content={"code": outcome.code, "message": outcome.message}
        )
    return ShipmentView.of(outcome)


def create_router(runtime: ServiceRuntime, rules: FulfilmentRules) -> APIRouter:
    router = APIRouter(tags=["fulfilment"])

    @router.post(
        "/shipments/{shipment_id}/pick",
        response_model=ShipmentView,
        responses={**NOT_FOUND, **REFUSED},
        summary="The warehouse picked the shipment's units",
    )
    async def pick(shipment_id: ShipmentPath) -> ShipmentView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.pick(uow, shipment_id, rules)
        return _answer(outcome, unknown=f"no shipment {shipment_id}")

    @router.post(
        "/shipments/{shipment_id}/pack",
        response_model=ShipmentView,
        responses={**NOT_FOUND, **REFUSED},
        summary="The warehouse packed the shipment (emits ShipmentPacked)",
    )
    async def pack(
        shipment_id: ShipmentPath, request: Annotated[PackRequest | None, Body()] = None
    ) -> ShipmentView | JSONResponse:
        parcels = (
            [(package.package_id, package.weight_grams) for package in request.packages]
            if request is not None
            else None
        )
        async with runtime.unit_of_work() as uow:
            outcome = await service.pack(uow, shipment_id, parcels, rules)
        return _answer(outcome, unknown=f"no shipment {shipment_id}")

    @router.post(
        "/shipments/{shipment_id}/ship",
        response_model=ShipmentView,
        responses={**NOT_FOUND, **REFUSED},
        summary="The carrier collected the shipment (emits Shipped); a pickup was handed "
        "over to the customer (emits Shipped and Delivered)",
    )
    async def ship(shipment_id: ShipmentPath) -> ShipmentView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.ship(uow, shipment_id, rules)
        return _answer(outcome, unknown=f"no shipment {shipment_id}")

    @router.post(
        "/carrier/tracking",
        response_model=ShipmentView,
        responses={**NOT_FOUND, **REFUSED},
        summary="A carrier's tracking update (emits Delivered once)",
    )
    async def tracking_update(update: TrackingUpdate) -> ShipmentView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.record_delivery(
                uow, update.tracking_number, update.occurred_at, rules
            )
        return _answer(
            outcome, unknown=f"no shipment with tracking number {update.tracking_number}"
        )

    @router.get(
        "/shipments/{shipment_id}",
        response_model=ShipmentView,
        responses=NOT_FOUND,
        summary="One shipment",
    )
    async def get_shipment(shipment_id: ShipmentPath) -> ShipmentView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            shipment = await service.find_shipment(uow, shipment_id)
        return _answer(shipment, unknown=f"no shipment {shipment_id}")

    @router.get("/shipments", response_model=list[ShipmentView], summary="An order's shipments")
    async def list_shipments(
        order_id: Annotated[OrderId, Query()],
    ) -> list[ShipmentView]:
        async with runtime.unit_of_work() as uow:
            shipments = await service.find_order_shipments(uow, order_id)
        return [ShipmentView.of(shipment) for shipment in shipments]

    return router
