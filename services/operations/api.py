"""The dashboard: HTML pages (Jinja2), their live updates as server-sent events (htmx's
SSE extension swaps the fragments in; the charts take JSON), the same views as JSON, and
the dead-letter replay action."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import RowMapping

from contracts.catalogue import CONSUMER_GROUPS
from services.kit.runtime import ServiceRuntime
from services.operations import db, domain, jobs, service
from services.operations.domain import STAGE_ORDER, StuckThresholds

TEMPLATES = Path(__file__).parent / "templates"

OrderIdPath = Annotated[
    str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
GroupQuery = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")]


def _templates() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["j2", "html"], default_for_string=True),
        enable_async=False,
    )
    environment.filters["ago"] = _ago
    environment.filters["clock"] = _clock
    environment.filters["duration"] = _duration
    environment.filters["preview"] = domain.preview
    environment.filters["percent"] = lambda part, whole: (
        f"{100 * part / whole:.1f} %" if whole else "—"
    )
    environment.globals["stages"] = [stage.value for stage in STAGE_ORDER]
    return environment


def _clock(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z" if moment else "—"


def _duration(span: timedelta | float | None) -> str:
    if span is None:
        return "—"
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    return _duration((now or datetime.now(UTC)) - moment)


def _sse(event: str, data: str) -> str:
    lines = data.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _json_rows(rows: list[RowMapping]) -> list[dict[str, Any]]:
    return [_jsonable(dict(row)) for row in rows]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items() if key != "value"}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return domain.preview(value)
    return value


def router(
    runtime: ServiceRuntime, thresholds: StuckThresholds, *, live_interval: float
) -> APIRouter:
    templates = _templates()
    routes = APIRouter()

    def render(name: str, **context: Any) -> str:
        return templates.get_template(name).render(**context)

    async def overview_now() -> service.Overview:
        async with runtime.engine.connect() as connection:
            # One snapshot for every panel: read one after the other, the funnel could
            # miss an order the recent list already shows in its new state.
            await connection.execution_options(isolation_level="REPEATABLE READ")
            return await service.overview(connection, thresholds, datetime.now(UTC))

    async def charts_now() -> dict[str, Any]:
        async with runtime.engine.connect() as connection:
            return await service.charts(connection, datetime.now(UTC))

    def overview_fragments(view: service.Overview) -> dict[str, str]:
        return {
            name: render(f"_{name}.html.j2", view=view)
            for name in (
                "funnel",
                "recent",
                "stuck",
                "lag",
                "deadletters",
                "lowstock",
                "returns",
                "notifications",
            )
        }

    @routes.get("/", response_class=HTMLResponse, tags=["dashboard"], summary="The overview")
    async def overview_page() -> str:
        view = await overview_now()
        return render("overview.html.j2", view=view, fragments=overview_fragments(view))

    @routes.get("/stream/overview", tags=["dashboard"], summary="Live overview (SSE)")
    async def overview_stream(request: Request) -> StreamingResponse:
        async def updates() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                view = await overview_now()
                for name, html in overview_fragments(view).items():
                    yield _sse(name, html)
                yield _sse("charts", json.dumps(await charts_now()).replace("<", "\\u003c"))
                await asyncio.sleep(live_interval)

        return _event_stream(updates())

    @routes.get("/api/overview", tags=["dashboard"], summary="The overview as JSON")
    async def overview_json() -> dict[str, Any]:
        view = await overview_now()
        return {
            "now": view.now.isoformat(),
            "counts": view.counts,
            "stuck": _json_rows(view.stuck),
            "stuck_total": view.stuck_total,
            "recent": _json_rows(view.recent),
            "dead_letters": view.dead_letters,
            "consumer_lag": _json_rows(view.lag),
            "low_stock": _json_rows(view.low_stock),
            "returns_by_reason": view.returns_by_reason,
            "return_rates": _json_rows(view.return_rates),
            "notification_failures": _json_rows(view.notification_failures),
            "notification_failure_count": view.notification_failure_count,
            "stuck_thresholds_seconds": _jsonable(view.thresholds),
        }

    @routes.get("/api/charts", tags=["dashboard"], summary="Chart series as JSON")
    async def charts_json() -> dict[str, Any]:
        return await charts_now()

    @routes.get(
        "/orders",
        response_class=HTMLResponse,
        tags=["dashboard"],
        summary="Orders, newest activity first",
    )
    async def orders_page(
        before: Annotated[
            datetime | None,
            Query(description="Cursor: last_event_at of the previous page's last row"),
        ] = None,
    ) -> str:
        async with runtime.engine.connect() as connection:
            rows = await db.recent_orders(connection, service.PAGE, before)
        following = rows[-1]["last_event_at"].isoformat() if len(rows) == service.PAGE else None
        return render("orders.html.j2", rows=rows, following=following, now=datetime.now(UTC))

    async def order_page_now(order_id: str) -> service.OrderPage:
        async with runtime.engine.connect() as connection:
            return await service.order_page(connection, order_id)

    @routes.get(
        "/orders/{order_id}",
        response_class=HTMLResponse,
        tags=["dashboard"],
        summary="One order's timeline and trace",
    )
    async def order_page(order_id: OrderIdPath) -> HTMLResponse:
        page = await order_page_now(order_id)
        status = 200 if page.order is not None or page.timeline else 404
        return HTMLResponse(
            render("order.html.j2", page=page, order_id=order_id, now=datetime.now(UTC)),
            status_code=status,
        )

    @routes.get("/stream/orders/{order_id}", tags=["dashboard"], summary="Live order page (SSE)")
    async def order_stream(order_id: OrderIdPath, request: Request) -> StreamingResponse:
        async def updates() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                page = await order_page_now(order_id)
                now = datetime.now(UTC)
                for name in ("order_summary", "timeline", "trace"):
                    yield _sse(
                        name, render(f"_{name}.html.j2", page=page, order_id=order_id, now=now)
                    )
                await asyncio.sleep(live_interval)

        return _event_stream(updates())

    @routes.get(
        "/api/orders/{order_id}",
        tags=["dashboard"],
        summary="One order's timeline and trace as JSON",
    )
    async def order_json(order_id: OrderIdPath) -> dict[str, Any]:
        page = await order_page_now(order_id)
        if page.order is None and not page.timeline:
            raise HTTPException(404, f"no order {order_id}")
        return {
            "order": _jsonable(dict(page.order)) if page.order else None,
            "timeline": _json_rows(page.timeline),
            "trace_id": page.trace_id,
            "trace_ids": page.trace_ids,
            "spans": [asdict(bar) for bar in page.waterfall],
        }

    @routes.get(
        "/dead-letters",
        response_class=HTMLResponse,
        tags=["dashboard"],
        summary="Dead letters, newest first",
    )
    async def dead_letters_page(
        group: GroupQuery = None,
        before: Annotated[
            int | None,
            Query(ge=1, le=2**62, description="Cursor: id of the previous page's last row"),
        ] = None,
        replayed: Annotated[int | None, Query(ge=1, le=2**62)] = None,
        error: Annotated[str | None, Query(max_length=500)] = None,
    ) -> str:
        async with runtime.engine.connect() as connection:
            rows = await db.dead_letter_page(connection, group, service.PAGE, before)
            counts = await db.dead_letter_counts(connection)
        following = rows[-1]["id"] if len(rows) == service.PAGE else None
        return render(
            "dead_letters.html.j2",
            rows=rows,
            counts=counts,
            groups=CONSUMER_GROUPS,
            group=group,
            following=following,
            replayed=replayed,
            error=error,
        )

    @routes.get("/api/dead-letters", tags=["dashboard"], summary="Dead letters as JSON")
    async def dead_letters_json(
        group: GroupQuery = None,
        before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    ) -> dict[str, Any]:
        async with runtime.engine.connect() as connection:
            rows = await db.dead_letter_page(connection, group, service.PAGE, before)
            counts = await db.dead_letter_counts(connection)
        return {"counts": counts, "items": _json_rows(rows)}

    @routes.post(
        "/dead-letters/{letter_id}/replay",
        tags=["dashboard"],
        summary="Publish the dead letter's original record back to its source topic",
        status_code=303,
    )
    async def replay(letter_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> RedirectResponse:
        producer = runtime.producer
        if producer is None:
            raise HTTPException(503, "the service is starting")
        bootstrap = runtime.settings.kafka_bootstrap_servers

        async def fetch(topic: str, partition: int, offset: int) -> bytes | None:
            return await jobs.fetch_record_value(bootstrap, topic, partition, offset)

        try:
            async with runtime.engine.begin() as connection:
                await service.replay_dead_letter(connection, producer, letter_id, fetch)
        except service.ReplayRefused as refused:
            return RedirectResponse(f"/dead-letters?error={quote(str(refused))}", status_code=303)
        return RedirectResponse(f"/dead-letters?replayed={letter_id}", status_code=303)

    return routes


def _event_stream(updates: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        updates,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
