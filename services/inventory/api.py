"""HTTP commands and queries of the inventory service: warehouses, stock receipts and
adjustments, thresholds, stock levels, reservations and the movement ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from contracts.base import Identifier, OrderId, Quantity, Sku
from contracts.events.common import CountryCode, Note, WarehouseId
from services.inventory import db, service
from services.inventory.domain import Location, StockLevel
from services.inventory.service import Refusal, StockChange, StockPolicy
from services.kit.runtime import ServiceRuntime
from services.kit.text import without_nul

MAX_UNITS = 1_000_000
# Offsets and ids are PostgreSQL bigints: a larger number cannot match anything, and
# asyncpg would refuse to encode it (a 500) rather than let the query find nothing.
MAX_BIGINT = 2**63 - 1


Text = Annotated[str, AfterValidator(without_nul)]

WarehousePath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
SkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
OrderPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseBody(Request):
    name: Text = Field(min_length=1, max_length=200)
    country: CountryCode
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class WarehouseView(BaseModel):
    warehouse_id: str
    name: str
    country: str
    latitude: float
    longitude: float


class ReceiptBody(Request):
    sku: Sku
    warehouse_id: WarehouseId
    quantity: Quantity
    reference: Identifier = Field(description="The supplier delivery's reference")


class AdjustmentBody(Request):
    sku: Sku
    warehouse_id: WarehouseId
    delta: int = Field(ge=-MAX_UNITS, le=MAX_UNITS, description="Units to add (or remove, < 0)")
    reason: Annotated[Note, AfterValidator(without_nul)]
    reference: Identifier | None = Field(
        default=None, description="Optional: makes a repeated adjustment a no-op"
    )

    @field_validator("delta")
    @classmethod
    def _changes_something(cls, delta: int) -> int:
        if delta == 0:
            raise ValueError("delta must not be 0")
        return delta


class ThresholdBody(Request):
    threshold: int = Field(ge=0, le=1_000_000_000)


class ThresholdView(BaseModel):
    sku: str
    threshold: int


class StockLevelView(BaseModel):
    sku: str
    warehouse_id: str
    on_hand: int
    reserved: int
    available: int


class StockChangeView(StockLevelView):
    duplicate: bool = Field(description="The reference was applied before; nothing changed")


class SkuStockView(BaseModel):
    sku: str
    threshold: int
    on_hand: int
    reserved: int
    available: int
    warehouses: list[StockLevelView]


class StockPage(BaseModel):
    items: list[StockLevelView]
    next_offset: int | None


class ReservationLineView(BaseModel):
    warehouse_id: str
    sku: str
    reserved: int
    committed: int
    released: int
    open: int


class ShortageView(BaseModel):
    sku: str
    requested: int
    available: int


class ReservationView(BaseModel):
    order_id: str
    reservation_id: str
    status: str
    cancelled: bool
    lines: list[ReservationLineView]
    shortages: list[ShortageView]


class MovementView(BaseModel):
    movement_id: int
    sku: str
    warehouse_id: str
    kind: str
    quantity: int
    on_hand_change: int
    reserved_change: int
    order_id: str | None
    reference: str | None
    note: str | None
    at: datetime


class LedgerPage(BaseModel):
    movements: list[MovementView]
    next_after: int | None = Field(description="Pass as `after` for the next page")


class Problem(BaseModel):
    code: str
    message: str


REFUSAL_STATUS = {service.UNKNOWN_WAREHOUSE: status.HTTP_404_NOT_FOUND}


def _refused(refusal: Refusal) -> JSONResponse:
    return JSONResponse(
        status_code=REFUSAL_STATUS.get(refusal.code, status.HTTP_409_CONFLICT),
        content=Problem(code=refusal.code, message=refusal.message).model_dump(),
    )


def _not_found(code: str, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_404_NOT_FOUND,
        content=Problem(code=code, message=message).model_dump(),
    )


def _level(sku: str, warehouse_id: str, level: StockLevel) -> StockLevelView:
    return StockLevelView(
        sku=sku,
        warehouse_id=warehouse_id,
        on_hand=level.on_hand,
        reserved=level.reserved,
        available=level.available,
    )


def _change(change: StockChange, response: Response, *, created: int) -> StockChangeView:
    response.status_code = status.HTTP_200_OK if change.duplicate else created
    return StockChangeView(
        **_level(change.sku, change.warehouse_id, change.level).model_dump(),
        duplicate=change.duplicate,
    )


REFUSALS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "Unknown warehouse"},
    409: {"model": Problem, "description": "Refused in the current state"},
}


def create_router(runtime: ServiceRuntime, policy: StockPolicy) -> APIRouter:
    router = APIRouter(tags=["inventory"])

    @router.put(
        "/warehouses/{warehouse_id}",
        response_model=WarehouseView,
        status_code=status.HTTP_200_OK,
        responses={201: {"model": WarehouseView, "description": "Created"}},
        summary="Create or update a warehouse (201 when created)",
    )
    async def put_warehouse(
        warehouse_id: WarehousePath, body: WarehouseBody, response: Response
    ) -> WarehouseView:
        warehouse = db.Warehouse(
            warehouse_id=warehouse_id,
            name=body.name,
            country=body.country,
            location=Location(body.latitude, body.longitude),
        )
        async with runtime.unit_of_work() as uow:
            created = await service.save_warehouse(uow, warehouse)
        if created:
            response.status_code = status.HTTP_201_CREATED
        return WarehouseView(warehouse_id=warehouse_id, **body.model_dump())

    @router.get("/warehouses", response_model=list[WarehouseView], summary="All warehouses")
    async def get_warehouses() -> list[WarehouseView]:
        async with runtime.engine.connect() as connection:
            found = await db.all_warehouses(connection)
        return [
            WarehouseView(
                warehouse_id=warehouse.warehouse_id,
                name=warehouse.name,
                country=warehouse.country,
                latitude=warehouse.location.latitude,
                longitude=warehouse.location.longitude,
            )
            for warehouse in found
        ]

    @router.post(
        "/stock/receipts",
        response_model=StockChangeView,
        status_code=status.HTTP_201_CREATED,
        responses=REFUSALS,
        summary="Book supplier stock in (the same reference again is a no-op 200)",
    )
    async def post_receipt(body: ReceiptBody, response: Response) -> StockChangeView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.receive_stock(
                uow,
                sku=body.sku,
                warehouse_id=body.warehouse_id,
                quantity=body.quantity,
                reference=body.reference,
            )
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        return _change(outcome, response, created=status.HTTP_201_CREATED)

    @router.post(
        "/stock/adjustments",
        response_model=StockChangeView,
        responses=REFUSALS,
        summary="Correct on-hand stock (never below what is reserved: 409 below_reserved)",
    )
    async def post_adjustment(
        body: AdjustmentBody, response: Response
    ) -> StockChangeView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await service.adjust_stock(
                uow,
                sku=body.sku,
                warehouse_id=body.warehouse_id,
                delta=body.delta,
                reason=body.reason,
                reference=body.reference,
                policy=policy,
            )
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        return _change(outcome, response, created=status.HTTP_200_OK)

    @router.put(
        "/stock/{sku}/threshold",
        response_model=ThresholdView,
        summary="Set the SKU's low-stock threshold (per warehouse available)",
    )
    async def put_threshold(sku: SkuPath, body: ThresholdBody) -> ThresholdView:
        async with runtime.unit_of_work() as uow:
            await service.set_low_stock_threshold(uow, sku, body.threshold)
        return ThresholdView(sku=sku, threshold=body.threshold)

    @router.get(
        "/stock/{sku}",
        response_model=SkuStockView,
        responses={404: {"model": Problem, "description": "No stock of this SKU anywhere"}},
        summary="One SKU's stock per warehouse",
    )
    async def get_sku_stock(sku: SkuPath) -> SkuStockView | JSONResponse:
        async with runtime.engine.connect() as connection:
            rows = await db.stock_of_sku(connection, sku)
            thresholds = await db.thresholds_for(
                connection, [sku], policy.default_low_stock_threshold
            )
        if not rows:
            return _not_found("unknown_sku", f"no stock of {sku!r} in any warehouse")
        return SkuStockView(
            sku=sku,
            threshold=thresholds[sku],
            on_hand=sum(row.level.on_hand for row in rows),
            reserved=sum(row.level.reserved for row in rows),
            available=sum(row.level.available for row in rows),
            warehouses=[_level(row.sku, row.warehouse_id, row.level) for row in rows],
        )

    @router.get("/stock", response_model=StockPage, summary="All stock, by SKU then warehouse")
    async def get_stock(
        offset: Annotated[int, Query(ge=0, le=MAX_BIGINT)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> StockPage:
        async with runtime.engine.connect() as connection:
            rows = await db.stock_page(connection, offset=offset, limit=limit + 1)
        return StockPage(
            items=[_level(row.sku, row.warehouse_id, row.level) for row in rows[:limit]],
            next_offset=offset + limit if len(rows) > limit else None,
        )

    @router.get(
        "/reservations/{order_id}",
        response_model=ReservationView,
        responses={404: {"model": Problem, "description": "No order of this id was handled"}},
        summary="What is held for an order, or why nothing could be",
    )
    async def get_reservation(order_id: OrderPath) -> ReservationView | JSONResponse:
        async with runtime.engine.connect() as connection:
            reservation = await db.find_reservation(connection, order_id)
        if reservation is None:
            return _not_found("unknown_order", f"no reservation for order {order_id!r}")
        return ReservationView(
            order_id=reservation.order_id,
            reservation_id=reservation.reservation_id,
            status=reservation.status.value,
            cancelled=reservation.cancelled,
            lines=[
                ReservationLineView(
                    warehouse_id=line.warehouse_id,
                    sku=line.sku,
                    reserved=line.reserved,
                    committed=line.committed,
                    released=line.released,
                    open=line.open,
                )
                for line in reservation.lines
            ],
            shortages=[ShortageView.model_validate(short) for short in reservation.shortages],
        )

    @router.get("/ledger", response_model=LedgerPage, summary="Stock movements, oldest first")
    async def get_ledger(
        sku: Annotated[Sku | None, Query()] = None,
        warehouse_id: Annotated[WarehouseId | None, Query()] = None,
        order_id: Annotated[OrderId | None, Query()] = None,
        after: Annotated[
            int, Query(ge=0, le=MAX_BIGINT, description="Last movement id already seen")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> LedgerPage:
        async with runtime.engine.connect() as connection:
            found = await db.movements(
                connection,
                sku=sku,
                warehouse_id=warehouse_id,
                order_id=order_id,
                after=after,
                limit=limit,
            )
        return LedgerPage(
            movements=[
                MovementView(
                    movement_id=recorded.movement_id,
                    sku=recorded.movement.sku,
                    warehouse_id=recorded.movement.warehouse_id,
                    kind=recorded.movement.kind.value,
                    quantity=recorded.movement.quantity,
                    on_hand_change=recorded.movement.on_hand_change,
                    reserved_change=recorded.movement.reserved_change,
                    order_id=recorded.movement.order_id,
                    reference=recorded.movement.reference,
                    note=recorded.movement.note,
                    at=recorded.at,
                )
                for recorded in found
            ],
            next_after=found[-1].movement_id if len(found) == limit else None,
        )

    return router
