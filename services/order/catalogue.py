"""The products orders may name: an order for a SKU that is not an active product is
rejected at intake."""

from __future__ import annotations

from services.kit.unit_of_work import UnitOfWork
from services.order import db
from services.order.views import ProductView


async def set_product(uow: UnitOfWork, sku: str, *, name: str, active: bool) -> ProductView:
    await db.upsert_product(uow.connection, sku, name, active)
    return ProductView(sku=sku, name=name, active=active)


async def list_products(uow: UnitOfWork) -> list[ProductView]:
    return [
        ProductView(sku=row.sku, name=row.name, active=row.active)
        for row in await db.all_products(uow.connection)
    ]
