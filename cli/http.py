"""Calls to the services' HTTP APIs, and how their answers become exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from cli.session import CliFailure, ExitCode, Session

MAX_BODY_PREVIEW = 500


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def call(
    session: Session,
    service: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> Answer:
    """One request to a service: the parsed answer on 2xx, else a CliFailure whose exit
    code says whether the system refused (1), found nothing (3) or is unavailable (4)."""
    url = f"{session.settings.url(service)}{path}"
    query = {name: value for name, value in (params or {}).items() if value is not None}
    try:
        response = session.http.request(method, url, json=body, params=query or None)
    except httpx.TimeoutException as error:
        raise CliFailure(
            ExitCode.UNREACHABLE,
            f"the {service} service at {session.settings.url(service)} did not answer in time "
            f"({type(error).__name__})",
            detail={"service": service, "url": url},
        ) from None
    except httpx.HTTPError as error:
        raise CliFailure(
            ExitCode.UNREACHABLE,
            f"cannot reach the {service} service at {session.settings.url(service)}: {error}",
            detail={"service": service, "url": url},
        ) from None
    parsed = _parsed(response)
    if response.is_success:
        if parsed is _NOT_JSON:
            raise CliFailure(
                ExitCode.UNREACHABLE,
                f"the {service} service answered {response.status_code} without JSON",
                detail={"service": service, "url": url, "status": response.status_code},
            )
        return Answer(response.status_code, parsed)
    raise failure_for(
        service, response.status_code, None if parsed is _NOT_JSON else parsed, response.text
    )


_NOT_JSON = object()


def _parsed(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return _NOT_JSON


def failure_for(service: str, status: int, body: Any, text: str = "") -> CliFailure:
    """The failure an unsuccessful answer means (pure, for tests)."""
    code = body.get("code") if isinstance(body, dict) else None
    problem = describe_problem(body) if body is not None else text[:MAX_BODY_PREVIEW]
    detail: dict[str, Any] = {"service": service, "status": status}
    if isinstance(code, str):
        detail["code"] = code
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        detail["fields"] = body["detail"]
    label = f"{status} {code}" if code else str(status)
    if status == 404:
        return CliFailure(ExitCode.NOT_FOUND, f"not found ({label}): {problem}", detail=detail)
    if 400 <= status < 500:
        return CliFailure(
            ExitCode.REFUSED, f"the {service} service refused ({label}): {problem}", detail=detail
        )
    return CliFailure(
        ExitCode.UNREACHABLE,
        f"the {service} service failed ({label}): {problem or 'no details'}",
        detail=detail,
    )


def describe_problem(body: Any) -> str:
    """A one-paragraph reading of the error bodies the services answer with: `{code,
    message}`, FastAPI's `{detail: "..."}` and its field-level `{detail: [{loc, msg}]}`."""
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return str(body["message"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            return "; ".join(_field_problem(item) for item in detail) or "invalid request"
    text = str(body)
    return text if len(text) <= MAX_BODY_PREVIEW else text[:MAX_BODY_PREVIEW] + "…"


def _field_problem(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    location = [str(part) for part in item.get("loc", []) if part != "body"]
    message = str(item.get("msg", "invalid"))
    return f"{'.'.join(location)}: {message}" if location else message
