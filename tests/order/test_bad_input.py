"""Every order endpoint answers malformed or invalid input with a 4xx naming what is
wrong, never a 500 (real PostgreSQL behind it: NUL characters, for one, would otherwise
reach it and fail there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.order.api import MAX_BODY_BYTES
from tests.order.scene import NEW_ADDRESS, Scene, new_key, order_fields, place

pytestmark = pytest.mark.integration


def b2b_body(**changes: Any) -> dict[str, Any]:
    return {**order_fields(channel="b2b"), "placed_by": "rep:jdoe", **changes}


def locations(response: Any) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["detail"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/orders/bad id"),
        ("GET", "/orders/%00"),
        ("GET", "/orders/" + "o" * 65),
        ("GET", "/orders/-leading-dash/timeline"),
        ("POST", "/orders/ord%2Fslash/cancel"),
        ("POST", "/orders/ord%00/shipping-address"),
        ("PUT", "/products/%00"),
    ],
)
async def test_path_ids_that_are_not_ids_are_422(scene: Scene, method: str, path: str) -> None:
    body: dict[str, Any] = {"reason": "other", "cancelled_by": "customer"}
    if path.endswith("shipping-address"):
        body = {"shipping_address": NEW_ADDRESS.model_dump(mode="json"), "changed_by": "agent:x"}
    if path.startswith("/products"):
        body = {"name": "x", "active": True}

    response = await scene.client.request(method, path, json=body)

    assert response.status_code in (404, 422), response.text
    if response.status_code == 422:
        assert locations(response)[0][0] == "path"


async def test_nul_characters_in_any_body_are_422_naming_the_field(scene: Scene) -> None:
    order_id = await place(scene)
    address = {**NEW_ADDRESS.model_dump(mode="json"), "name": "Ada\x00"}
    customer = {**b2b_body()["customer"], "name": "Ada\x00Lovelace"}

    answers = {
        "product": await scene.client.put(
            "/products/SKU-Z", json={"name": "bad\x00name", "active": True}
        ),
        "order": await scene.client.post(
            "/orders", json=b2b_body(customer=customer, notes="hi\x00"), headers=new_key()
        ),
        "cancel": await scene.client.post(
            f"/orders/{order_id}/cancel",
            json={"reason": "other", "cancelled_by": "customer", "note": "\x00"},
        ),
        "address": await scene.client.post(
            f"/orders/{order_id}/shipping-address",
            json={"shipping_address": address, "changed_by": "agent:x"},
        ),
    }

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        answers, 422
    )
    assert locations(answers["product"]) == [["body", "name"]]
    assert locations(answers["order"]) == [["body", "customer"], ["body", "notes"]]
    assert "customer.name" not in answers["order"].json()["detail"][0]["msg"]
    assert "name" in answers["order"].json()["detail"][0]["msg"]
    assert locations(answers["address"]) == [["body", "shipping_address"]]
    assert (await scene.client.get(f"/orders/{order_id}")).json()["status"] == "placed"


async def test_bodies_over_the_limit_are_413_whether_declared_or_streamed(scene: Scene) -> None:
    huge = b'{"notes": "' + b"x" * MAX_BODY_BYTES + b'"}'

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 64 * 1024):
            yield huge[start : start + 64 * 1024]

    declared = await scene.client.post(
        "/orders", content=huge, headers={**new_key(), "Content-Type": "application/json"}
    )
    chunked = await scene.client.post(
        "/orders", content=streamed(), headers={**new_key(), "Content-Type": "application/json"}
    )

    for answer in (declared, chunked):
        assert answer.status_code == 413
        assert answer.json()["code"] == "body_too_large"


async def test_a_body_just_under_the_limit_is_read_and_judged(scene: Scene) -> None:
    body = b2b_body(notes="x" * 2001)
    response = await scene.client.post("/orders", json=body, headers=new_key())
    assert response.status_code == 422
    assert locations(response) == [["body", "notes"]]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"{not json", ["body", 1]),
        (b"[]", ["body"]),
        (b'"an order"', ["body"]),
        (b"null", ["body"]),
    ],
)
async def test_bodies_that_are_not_an_order_object_are_422(
    scene: Scene, content: bytes, where: list[Any]
) -> None:
    response = await scene.client.post(
        "/orders", content=content, headers={**new_key(), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert locations(response)[0] == where


async def test_deeply_nested_json_is_a_4xx(scene: Scene) -> None:
    content = b"[" * 100_000 + b"]" * 100_000
    response = await scene.client.post(
        "/orders", content=content, headers={**new_key(), "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"total": {"amount_minor": 10.5, "currency": "EUR"}}, ["body", "total", "amount_minor"]),
        ({"total": {"amount_minor": "1490", "currency": "EUR"}}, ["body", "total", "amount_minor"]),
        ({"currency": "EURO"}, ["body", "currency"]),
        ({"currency": "XYZ"}, ["body", "currency"]),
        ({"lines": {"sku": "SKU-A"}}, ["body", "lines"]),
        ({"lines": []}, ["body", "lines"]),
        ({"shipping_speed": "teleport"}, ["body", "shipping_speed"]),
        ({"submitted_at": "2026-05-01T10:00:00"}, ["body", "submitted_at"]),
        ({"gift_wrap": True}, ["body", "gift_wrap"]),
        ({"total": {"amount_minor": 10**13, "currency": "EUR"}}, ["body", "total", "amount_minor"]),
    ],
)
async def test_wrong_types_and_values_are_422_with_the_field(
    scene: Scene, change: dict[str, Any], where: list[Any]
) -> None:
    response = await scene.client.post("/orders", json=b2b_body(**change), headers=new_key())
    assert response.status_code == 422, response.text
    assert where in locations(response)


async def test_negative_and_zero_quantities_are_422_with_the_line(scene: Scene) -> None:
    body = b2b_body()
    body["lines"][0]["quantity"] = 0
    body["lines"][1]["quantity"] = -3
    response = await scene.client.post("/orders", json=body, headers=new_key())
    assert response.status_code == 422
    assert locations(response)[:2] == [
        ["body", "lines", 0, "quantity"],
        ["body", "lines", 1, "quantity"],
    ]


async def test_commands_with_bad_bodies_are_422(scene: Scene) -> None:
    order_id = await place(scene)
    cancel = await scene.client.post(
        f"/orders/{order_id}/cancel", json={"reason": "bored", "cancelled_by": "x y"}
    )
    address = await scene.client.post(
        f"/orders/{order_id}/shipping-address", json={"shipping_address": {"city": 5}}
    )
    product = await scene.client.put("/products/SKU-Q", json={"name": "", "active": "maybe"})
    assert cancel.status_code == address.status_code == product.status_code == 422
    assert locations(cancel) == [["body", "reason"], ["body", "cancelled_by"]]
    assert ["body", "changed_by"] in locations(address)
    assert locations(product) == [["body", "name"], ["body", "active"]]
