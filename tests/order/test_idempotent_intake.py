"""POST /orders with an Idempotency-Key, against the real Kafka and PostgreSQL: one effect
per key, the first answer again for the same body, 409 for another body, also when the
requests race."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.events.order import OrderPlaced
from services.order import db, submissions
from tests.order.scene import Scene, about, new_key, order_fields

pytestmark = pytest.mark.integration


def b2b_body(**changes: Any) -> dict[str, Any]:
    return {**order_fields(channel="b2b"), "placed_by": "rep:jdoe", **changes}


async def orders_with(scene: Scene, *external_ids: str) -> list[str]:
    async with scene.database.connect() as connection:
        result = await connection.execute(
            select(db.orders.c.order_id).where(db.orders.c.external_order_id.in_(external_ids))
        )
        return list(result.scalars())


async def test_the_same_key_and_body_answers_the_first_answer_without_a_second_order(
    scene: Scene,
) -> None:
    body = b2b_body()
    key = new_key()

    first = await scene.client.post("/orders", json=body, headers=key)
    again = await scene.client.post("/orders", json=body, headers=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    order_id = first.json()["order_id"]
    await scene.wait_for(OrderPlaced, about(order_id))
    assert len(await scene.order_events(about(order_id))) == 1
    async with scene.database.connect() as connection:
        stored = (
            (
                await connection.execute(
                    select(db.order_idempotency_keys).where(
                        db.order_idempotency_keys.c.key == key["Idempotency-Key"]
                    )
                )
            )
            .mappings()
            .one()
        )
    assert (stored["response_status"], stored["order_id"]) == (201, order_id)
    assert len(stored["body_hash"]) == 64


async def test_the_same_body_written_differently_is_the_same_body(scene: Scene) -> None:
    body = b2b_body(submitted_at="2026-05-01T12:00:00+02:00")
    key = new_key()
    first = await scene.client.post("/orders", json=body, headers=key)

    reordered = dict(reversed(list(body.items())))
    reordered["submitted_at"] = "2026-05-01T10:00:00Z"
    again = await scene.client.post(
        "/orders",
        content=json.dumps(reordered, indent=3).encode(),
        headers={**key, "Content-Type": "application/json"},
    )

    assert (again.status_code, again.json()["order_id"]) == (201, first.json()["order_id"])


async def test_the_same_key_with_another_body_is_refused_and_creates_nothing(
    scene: Scene,
) -> None:
    key = new_key()
    first = await scene.client.post("/orders", json=b2b_body(), headers=key)
    other = b2b_body()

    refused = await scene.client.post("/orders", json=other, headers=key)

    assert first.status_code == 201
    assert refused.status_code == 409
    assert refused.json()["code"] == "idempotency_key_reused"
    assert refused.json()["field"] == "Idempotency-Key"
    assert await orders_with(scene, other["external_order_id"]) == []


async def test_a_rejection_is_answered_again_as_the_same_rejection(scene: Scene) -> None:
    body = {**b2b_body(), **order_fields({"SKU-NEVER": 1}, channel="b2b")}
    key = new_key()

    first = await scene.client.post("/orders", json=body, headers=key)
    again = await scene.client.post("/orders", json=body, headers=key)

    assert first.status_code == again.status_code == 422
    assert first.json()["code"] == again.json()["code"] == "order_rejected"
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.json()["reasons"] == first.json()["reasons"]


async def test_a_known_channel_order_under_a_new_key_answers_200_and_so_does_its_replay(
    scene: Scene,
) -> None:
    body = b2b_body()
    created = await scene.client.post("/orders", json=body, headers=new_key())
    key = new_key()

    duplicate = await scene.client.post("/orders", json=body, headers=key)
    replay = await scene.client.post("/orders", json=body, headers=key)

    assert created.status_code == 201
    assert duplicate.status_code == replay.status_code == 200
    assert duplicate.json()["order_id"] == replay.json()["order_id"] == created.json()["order_id"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "idempotency_key_missing"),
        ({"Idempotency-Key": ""}, "idempotency_key_missing"),
        ({"Idempotency-Key": "k" * 256}, "idempotency_key_invalid"),
    ],
)
async def test_a_missing_or_overlong_key_is_a_400_and_nothing_is_taken(
    scene: Scene, headers: dict[str, str], code: str
) -> None:
    body = b2b_body()

    response = await scene.client.post("/orders", json=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["field"] == "Idempotency-Key"
    assert "255" in response.json()["message"]
    assert await orders_with(scene, body["external_order_id"]) == []


async def test_a_key_of_255_characters_is_taken(scene: Scene) -> None:
    response = await scene.client.post(
        "/orders", json=b2b_body(), headers={"Idempotency-Key": "k" * 254 + "x"}
    )
    assert response.status_code == 201, response.text


async def test_racing_requests_with_one_key_and_one_body_make_one_order(scene: Scene) -> None:
    body = b2b_body()
    key = new_key()

    answers = await asyncio.gather(
        *(scene.client.post("/orders", json=body, headers=key) for _ in range(8))
    )

    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["order_id"] for answer in answers}) == 1
    assert len(await orders_with(scene, body["external_order_id"])) == 1


async def test_racing_requests_with_one_key_and_different_bodies_make_one_order(
    scene: Scene,
) -> None:
    bodies = [b2b_body() for _ in range(6)]
    key = new_key()

    answers = await asyncio.gather(
        *(scene.client.post("/orders", json=body, headers=key) for body in bodies)
    )

    assert sorted(answer.status_code for answer in answers) == [201] + [409] * 5
    [created] = [answer.json() for answer in answers if answer.status_code == 201]
    ids = await orders_with(scene, *(body["external_order_id"] for body in bodies))
    assert ids == [created["order_id"]]
    async with scene.database.connect() as connection:
        stored = await connection.scalar(
            select(func.count())
            .select_from(db.order_idempotency_keys)
            .where(db.order_idempotency_keys.c.key == key["Idempotency-Key"])
        )
    assert stored == 1


async def test_the_second_claim_of_a_key_waits_for_the_first_and_finds_it_taken(
    scene: Scene,
) -> None:
    """The unique key decides, even when both requests got past the first look-up: the
    second insert waits for the first transaction, then finds the key taken (and the API
    rolls its own order back)."""
    runtime = scene.runtime
    key = new_key()["Idempotency-Key"]
    winner = await _order_id_of_new_order(scene)
    loser = await _order_id_of_new_order(scene)
    async with runtime.unit_of_work() as holding:
        assert await submissions.store_answer(
            holding, key, submissions.StoredAnswer("a" * 64, 201, winner)
        )

        async def contender() -> bool:
            async with runtime.unit_of_work() as racing:
                return await submissions.store_answer(
                    racing, key, submissions.StoredAnswer("b" * 64, 201, loser)
                )

        racing = asyncio.create_task(contender())
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second insert waits on the key"
    assert await racing is False
    async with runtime.unit_of_work() as reading:
        assert await submissions.stored_answer(reading, key) == submissions.StoredAnswer(
            "a" * 64, 201, winner
        )


async def _order_id_of_new_order(scene: Scene) -> str:
    response = await scene.client.post("/orders", json=b2b_body(), headers=new_key())
    assert response.status_code == 201
    order_id: str = response.json()["order_id"]
    return order_id
