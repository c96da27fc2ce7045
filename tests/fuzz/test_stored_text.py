"""Free text that reaches the returns database: PostgreSQL cannot store U+0000, so a NUL
character in a note or a rejection message must be refused as that field's error (422)
on a return that exists, where it would otherwise be written (a 500 before the fix)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import create_async_engine

from services.returns.app import ReturnsSettings, create_app
from tests.infrastructure import Infrastructure
from tests.returns.test_returns_service import Scene
from tests.service_harness import fresh_namespace, running_service, settings_environment

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def returns(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    names = await fresh_namespace(infrastructure)
    database_url = await infrastructure.create_database("fuzz_returns_text")
    settings = ReturnsSettings(**settings_environment(infrastructure, names, database_url))
    database = create_async_engine(database_url)
    async with running_service(create_app(settings)) as client:
        yield Scene(infrastructure, names, client, database)
    await database.dispose()


async def test_nul_in_a_rejection_message_is_refused_as_that_field(returns: Scene) -> None:
    order_id = await returns.order_known()
    return_id = (await returns.request(order_id, ("MUG", 1, "other"))).json()["return_id"]

    refused = await returns.client.post(
        f"/returns/{return_id}/reject",
        json={"reasons": [{"code": "other", "message": "used\x00item", "field": "lines\x00"}]},
    )

    assert refused.status_code == 422, refused.text
    assert {tuple(error["loc"]) for error in refused.json()["detail"]} == {
        ("body", "reasons", 0, "message"),
        ("body", "reasons", 0, "field"),
    }
    rejected = await returns.client.post(
        f"/returns/{return_id}/reject",
        json={"reasons": [{"code": "other", "message": "used item"}]},
    )
    assert rejected.status_code == 200, rejected.text


async def test_nul_in_an_inspection_note_is_refused_as_that_field(returns: Scene) -> None:
    order_id = await returns.order_known()
    return_id = (await returns.request(order_id, ("MUG", 1, "damaged"))).json()["return_id"]
    assert (await returns.client.post(f"/returns/{return_id}/approve")).status_code == 200
    line = {"sku": "MUG", "quantity": 1, "restockable_quantity": 0}

    refused = await returns.client.post(
        f"/returns/{return_id}/receive", json={"lines": [{**line, "note": "chipped\x00"}]}
    )

    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "lines", 0, "note"]
    assert "NUL" in error["msg"]
    received = await returns.client.post(
        f"/returns/{return_id}/receive", json={"lines": [{**line, "note": "chipped"}]}
    )
    assert received.status_code == 200, received.text
