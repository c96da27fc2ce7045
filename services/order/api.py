"""The order service's HTTP API: the product catalogue, orders taken over HTTP (with an
Idempotency-Key), customer-service commands (cancel, change the shipping address) and
queries. Commands refused in the order's current state answer 409 with a `code`.

Bad input is answered 4xx, never 500: bodies and query strings are validated field by
field (422), text holding NUL characters (which PostgreSQL cannot store) is refused at
validation, path ids must look like ids, and bodies over the size limit get 413.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import to_jsonable_python
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.base import (
    CurrencyCode,
    Identifier,
    Money,
    OrderId,
    Sku,
    UtcDatetime,
    utc_now,
)
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
from contracts.events.pricing import ChannelPayment, Charge, Discount, ShippingLine
from services.kit.logs import get_logger
from services.kit.runtime import ServiceRuntime
from services.kit.unit_of_work import UnitOfWork
from services.order import catalogue, customer_service, queries, submissions
from services.order.changes import InconsistentOrderState
from services.order.customer_service import CommandOutcome, UndeliverableAddress, UnknownOrder
from services.order.domain import OrderStatus, Refusal
from services.order.queries import OrderFilters
from services.order.rows import ChangeCause
from services.order.submissions import IntakeOutcome, IntakePolicy, StoredAnswer
from services.order.views import (
    InvalidCursor,
    OrderCursor,
    OrderPage,
    OrderView,
    ProductView,
    RejectionReasonView,
    TimelineEntryView,
)

log = get_logger(__name__)

MAX_BODY_BYTES = 512 * 1024
"""The largest request body taken: the size limit of an event on the inbound topic."""

MAX_IDEMPOTENCY_KEY_CHARS = 255
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class Problem(BaseModel):
    code: str = Field(description="Machine-readable reason", examples=["already_shipped"])
    message: str
    field: str | None = Field(
        default=None, description="The request field at fault, when one is", examples=[None]
    )


class FieldError(BaseModel):
    """One of FastAPI's validation errors: where (`loc`) and what is wrong."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(examples=[["body", "lines", 0, "quantity"]])
    msg: str
    type: str


class InvalidRequest(BaseModel):
    """422: the request is not valid; one entry per offending field."""

    detail: list[FieldError]


class UnreadableBody(BaseModel):
    """400 from FastAPI itself: the body could not be read as JSON text at all."""

    detail: str = Field(examples=["There was an error parsing the body"])


class RequestBody(BaseModel):
    """A request body: closed (unknown fields are errors), and no text in it may hold a
    NUL character, which PostgreSQL cannot store."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: object) -> object:
        paths = submissions.nul_paths(to_jsonable_python(value))
        if paths:
            where = ", ".join(path or "the value" for path in paths[:10])
            raise ValueError(f"contains a NUL character (U+0000), not accepted in text: {where}")
        return value


class ProductUpdate(RequestBody):
    name: Name
    active: bool = Field(description="Whether the product can be ordered")


class OrderSubmission(RequestBody):
    """An order entered on a customer's behalf: the fields of OrderSubmitted (the same
    money model, formulas and checks), with the sales representative required."""

    channel: Channel
    external_order_id: ExternalOrderId
    customer: Customer
    lines: tuple[OrderLine, ...] = Field(min_length=1, max_length=500)
    currency: CurrencyCode
    subtotal: Money
    shipping_charge: Money
    total: Money
    shipping_address: Address | None = Field(
        default=None, description="Absent for an order collected at the warehouse"
    )
    shipping_speed: ShippingSpeed
    placed_by: Actor
    submitted_at: UtcDatetime | None = Field(
        default=None, description="When the customer ordered; now when not given"
    )
    notes: Note | None = None
    discounts: tuple[Discount, ...] = Field(default=(), max_length=100)
    shipping_lines: tuple[ShippingLine, ...] = Field(default=(), max_length=20)
    charges: tuple[Charge, ...] = Field(default=(), max_length=20)
    taxes_included: bool = False
    total_discounts: Money | None = None
    total_tax: Money | None = None
    billing_address: Address | None = None
    payment: ChannelPayment | None = None


class OrderRejectedAnswer(BaseModel):
    code: str = "order_rejected"
    order_id: str
    reasons: list[RejectionReasonView]


class UndeliverableAnswer(BaseModel):
    code: str = "invalid_address"
    reasons: list[RejectionReasonView]


class CancelRequest(RequestBody):
    reason: CancellationReason
    cancelled_by: Actor
    note: Note | None = None


class AddressChangeRequest(RequestBody):
    shipping_address: Address
    changed_by: Actor


UNPROCESSABLE = 422

SUBMITTED_AS_GIVEN = tuple(name for name in OrderSubmission.model_fields if name != "submitted_at")
"""The request's fields that OrderSubmitted takes as they are."""

REFUSED: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"model": Problem, "description": "No such order"},
    status.HTTP_409_CONFLICT: {"model": Problem, "description": "Refused in this state"},
}

INTAKE_STATUS = {
    IntakeOutcome.PLACED: status.HTTP_201_CREATED,
    IntakeOutcome.DUPLICATE: status.HTTP_200_OK,
    IntakeOutcome.REJECTED: UNPROCESSABLE,
}


def _valid_cursor(cursor: str) -> str:
    try:
        OrderCursor.decode(cursor)
    except InvalidCursor as error:
        raise ValueError(str(error)) from None
    return cursor


def _valid_moment(text: str) -> str:
    _moment(text)
    return text


def _moment(text: str) -> date | datetime:
    """An ISO 8601 date (a whole day) or date and time (UTC when it names no offset)."""
    try:
        if len(text) <= 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            "not an ISO 8601 date (2026-05-01) or date and time (2026-05-01T10:00:00Z)"
        ) from None


Cursor = Annotated[
    str,
    StringConstraints(min_length=1, max_length=512),
    AfterValidator(_valid_cursor),
]
Moment = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_valid_moment),
    WithJsonSchema(
        {
            "type": "string",
            "description": "ISO 8601 date or date and time (UTC without an offset)",
            "examples": ["2026-05-01", "2026-05-01T10:00:00Z"],
        }
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        description="Required: 1 to 255 characters of the client's choosing (a UUID does). "
        "The same key with the same body answers the first answer again; with another "
        "body, 409 idempotency_key_reused.",
    ),
]


def router(runtime: ServiceRuntime, policy: IntakePolicy) -> APIRouter:
    api = APIRouter()

    @api.put("/products/{sku}", tags=["products"], summary="Add or update a sellable product")
    async def put_product(sku: Annotated[Sku, Path()], update: ProductUpdate) -> ProductView:
        async with runtime.unit_of_work() as uow:
            return await catalogue.set_product(uow, sku, name=update.name, active=update.active)

    @api.get("/products", tags=["products"], summary="The product catalogue")
    async def get_products() -> list[ProductView]:
        async with runtime.unit_of_work() as uow:
            return await catalogue.list_products(uow)

    @api.post(
        "/orders",
        tags=["orders"],
        summary="Submit an order over HTTP (the same intake as the channel topic)",
        response_model=OrderView,
        status_code=status.HTTP_201_CREATED,
        responses={
            status.HTTP_200_OK: {
                "model": OrderView,
                "description": "Already submitted (same channel and external order id)",
            },
            status.HTTP_400_BAD_REQUEST: {
                "model": Problem | UnreadableBody,
                "description": "Idempotency-Key missing, empty or too long; or a body that "
                "is not text",
            },
            status.HTTP_409_CONFLICT: {
                "model": Problem,
                "description": "idempotency_key_reused: the key came with another body",
            },
            status.HTTP_413_CONTENT_TOO_LARGE: {"model": Problem, "description": "Body too big"},
            UNPROCESSABLE: {
                "model": OrderRejectedAnswer | InvalidRequest,
                "description": "Rejected (OrderRejected is emitted), or not a valid request",
            },
        },
    )
    async def post_order(
        submission: OrderSubmission, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
            return _problem(
                status.HTTP_400_BAD_REQUEST,
                "idempotency_key_invalid" if idempotency_key else "idempotency_key_missing",
                f"send an {IDEMPOTENCY_KEY_HEADER} header of 1 to "
                f"{MAX_IDEMPOTENCY_KEY_CHARS} characters (a UUID will do)",
                field=IDEMPOTENCY_KEY_HEADER,
            )
        body_hash = _body_hash(submission)
        submitted = OrderSubmitted(
            **{name: getattr(submission, name) for name in SUBMITTED_AS_GIVEN},
            submitted_at=submission.submitted_at or utc_now(),
        )
        cause = ChangeCause(actor=submission.placed_by, command="submit_order")
        try:
            async with runtime.unit_of_work() as uow:
                earlier = await submissions.stored_answer(uow, idempotency_key)
                if earlier is not None:
                    return await _replay(uow, earlier, body_hash)
                result = await submissions.submit_order(uow, submitted, policy, cause)
                answer = StoredAnswer(body_hash, INTAKE_STATUS[result.outcome], result.order_id)
                if not await submissions.store_answer(uow, idempotency_key, answer):
                    # Leaving the block with this exception rolls back our own effect.
                    raise _KeyTakenMeanwhile
                return await _intake_answer(uow, answer, replayed=False)
        except _KeyTakenMeanwhile:
            log.info("idempotency key taken by a concurrent request; answering as it")
            async with runtime.unit_of_work() as uow:
                earlier = await submissions.stored_answer(uow, idempotency_key)
                if earlier is None:
                    raise InconsistentOrderState(
                        f"idempotency key {idempotency_key!r} conflicted but is not there"
                    ) from None
                return await _replay(uow, earlier, body_hash)

    @api.post(
        "/orders/{order_id}/cancel",
        tags=["orders"],
        summary="Cancel an order before anything has shipped",
        response_model=OrderView,
        responses=REFUSED,
    )
    async def cancel(
        order_id: Annotated[OrderId, Path()], request: CancelRequest
    ) -> OrderView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await customer_service.cancel_order(
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
        responses={
            **REFUSED,
            UNPROCESSABLE: {
                "model": UndeliverableAnswer | InvalidRequest,
                "description": "The address breaks its country's rules, or the request is "
                "not valid",
            },
        },
    )
    async def change_address(
        order_id: Annotated[OrderId, Path()], request: AddressChangeRequest
    ) -> OrderView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            outcome = await customer_service.change_shipping_address(
                uow,
                order_id,
                shipping_address=request.shipping_address,
                changed_by=request.changed_by,
                policy=policy,
            )
            if isinstance(outcome, UndeliverableAddress):
                return JSONResponse(
                    UndeliverableAnswer(
                        reasons=[
                            RejectionReasonView(
                                code=problem.code.value,
                                field=problem.field,
                                message=problem.message,
                            )
                            for problem in outcome.problems
                        ]
                    ).model_dump(),
                    UNPROCESSABLE,
                )
            return await _answer(uow, outcome, order_id)

    @api.get(
        "/orders/{order_id}",
        tags=["orders"],
        summary="One order, with its timeline across every service",
        response_model=OrderView,
        responses=REFUSED,
    )
    async def get_order(order_id: Annotated[OrderId, Path()]) -> OrderView | JSONResponse:
        async with runtime.unit_of_work() as uow:
            view = await queries.order_view(uow, order_id)
        return view if view is not None else _not_found(order_id)

    @api.get(
        "/orders/{order_id}/timeline",
        tags=["orders"],
        summary="Every event about the order from every service, oldest first",
        response_model=list[TimelineEntryView],
        responses=REFUSED,
    )
    async def get_timeline(
        order_id: Annotated[OrderId, Path()],
    ) -> list[TimelineEntryView] | JSONResponse:
        async with runtime.unit_of_work() as uow:
            entries = await queries.timeline_view(uow, order_id)
        return entries if entries is not None else _not_found(order_id)

    @api.get(
        "/orders",
        tags=["orders"],
        summary="Orders, newest first, a page at a time",
        description="Filters combine (AND). `placed_from` and `placed_to` include their "
        "bounds; a date alone means the whole day (UTC). Follow `next_cursor` for the next "
        "page, with the same filters.",
    )
    async def list_orders(
        channel: Annotated[Channel | None, Query()] = None,
        external_order_id: Annotated[ExternalOrderId | None, Query()] = None,
        order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
        customer_id: Annotated[Identifier | None, Query()] = None,
        placed_from: Annotated[Moment | None, Query()] = None,
        placed_to: Annotated[Moment | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[
            Cursor | None, Query(description="next_cursor of the page before")
        ] = None,
    ) -> OrderPage:
        filters = OrderFilters(
            channel=channel,
            external_order_id=external_order_id,
            status=order_status,
            customer_id=customer_id,
            placed_from=_start_of(_moment(placed_from)) if placed_from else None,
        )
        if placed_to:
            upper = _moment(placed_to)
            if isinstance(upper, datetime):
                filters = dataclasses.replace(filters, placed_until=upper)
            elif upper < date.max:
                filters = dataclasses.replace(
                    filters, placed_before=_start_of(upper + timedelta(days=1))
                )
        async with runtime.unit_of_work() as uow:
            return await queries.order_page(
                uow,
                filters,
                limit=limit,
                after=OrderCursor.decode(cursor) if cursor else None,
            )

    return api


class _KeyTakenMeanwhile(Exception):
    """A concurrent request with the same Idempotency-Key committed first."""


def _body_hash(submission: OrderSubmission) -> str:
    """SHA-256 of the parsed body in a canonical form: the same order sent with its keys in
    another order, other spacing or equivalent times hashes the same."""
    canonical = json.dumps(
        submission.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _replay(uow: UnitOfWork, earlier: StoredAnswer, body_hash: str) -> JSONResponse:
    if earlier.body_hash != body_hash:
        return _problem(
            status.HTTP_409_CONFLICT,
            "idempotency_key_reused",
            f"this {IDEMPOTENCY_KEY_HEADER} was used for another body (order "
            f"{earlier.order_id}); use a new key for a new order",
            field=IDEMPOTENCY_KEY_HEADER,
        )
    return await _intake_answer(uow, earlier, replayed=True)


async def _intake_answer(uow: UnitOfWork, answer: StoredAnswer, *, replayed: bool) -> JSONResponse:
    """The answer to a submission, the same each time its key comes again: its status
    code, and the order as it is now."""
    view = await queries.order_view(uow, answer.order_id)
    if view is None:
        raise InconsistentOrderState(f"intake answered with {answer.order_id}, not there")
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    if answer.response_status == UNPROCESSABLE:
        rejected = OrderRejectedAnswer(order_id=view.order_id, reasons=view.rejection_reasons)
        return JSONResponse(rejected.model_dump(mode="json"), UNPROCESSABLE, headers)
    return JSONResponse(view.model_dump(mode="json"), answer.response_status, headers)


def _start_of(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, time(), tzinfo=UTC)


class BodySizeLimit:
    """Answers 413 to a request whose body is over `max_bytes`, before anything parses
    it (uvicorn and FastAPI would read any size into memory)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: hand the app what came, it sees the disconnect.
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = _problem(
            status.HTTP_413_CONTENT_TOO_LARGE,
            "body_too_large",
            f"request bodies are limited to {self._max_bytes} bytes",
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


async def _answer(
    uow: UnitOfWork, outcome: CommandOutcome, order_id: str
) -> OrderView | JSONResponse:
    if isinstance(outcome, UnknownOrder):
        return _not_found(order_id)
    if isinstance(outcome, Refusal):
        return _problem(status.HTTP_409_CONFLICT, outcome.code.value, outcome.message)
    view = await queries.order_view(uow, order_id)
    return view if view is not None else _not_found(order_id)


def _not_found(order_id: str) -> JSONResponse:
    return _problem(status.HTTP_404_NOT_FOUND, "order_not_found", f"no order {order_id}")


def _problem(
    status_code: int, code: str, message: str, *, field: str | None = None
) -> JSONResponse:
    problem = Problem(code=code, message=message, field=field)
    return JSONResponse(problem.model_dump(exclude_none=True), status_code)
