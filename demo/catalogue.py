"""Demo data: warehouses in France and Germany, eight products (their prices include
VAT), stock levels chosen so that some orders ship from one warehouse, some split, and a
few run out of stock, and the customers who order them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Warehouse:
    warehouse_id: str
    name: str
    country: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price_minor: int
    stock: dict[str, int]


WAREHOUSES = (
    Warehouse("wh-paris", "Paris Nord", "FR", 48.95, 2.38),
    Warehouse("wh-lyon", "Lyon Saint-Priest", "FR", 45.70, 4.94),
    Warehouse("wh-berlin", "Berlin Schönefeld", "DE", 52.39, 13.52),
)

PRODUCTS = (
    Product("LAMP-ARC", "Arc floor lamp", 12_900, {"wh-paris": 40, "wh-berlin": 40}),
    Product("MUG-STONE", "Stoneware mug", 1_450, {"wh-paris": 200, "wh-lyon": 200}),
    Product("CHAIR-OAK", "Oak dining chair", 8_900, {"wh-lyon": 30}),
    Product("TABLE-OAK", "Oak dining table", 54_900, {"wh-berlin": 12}),
    Product("RUG-WOOL", "Wool rug 160x230", 23_900, {"wh-berlin": 25, "wh-paris": 5}),
    Product("VASE-GLASS", "Hand-blown glass vase", 4_900, {"wh-paris": 60}),
    Product("THROW-LINEN", "Linen throw", 5_900, {"wh-lyon": 50, "wh-berlin": 50}),
    Product("CLOCK-WALL", "Wall clock (limited edition)", 9_900, {"wh-paris": 3}),
)


@dataclass(frozen=True)
class DemoCustomer:
    slug: str
    name: str
    locale: str
    country: str
    city: str
    postal_code: str
    street: str


CUSTOMERS = (
    DemoCustomer("camille", "Camille Martin", "fr", "FR", "Paris", "75011", "18 rue Oberkampf"),
    DemoCustomer("hugo", "Hugo Bernard", "fr", "FR", "Lyon", "69002", "4 quai Saint-Antoine"),
    DemoCustomer("lena", "Lena Schmidt", "en", "DE", "Berlin", "10115", "Invalidenstraße 43"),
    DemoCustomer("ada", "Ada Lovelace", "en", "GB", "London", "SW1A 1AA", "10 Downing Street"),
    DemoCustomer("elodie", "Élodie Petit", "fr", "BE", "Bruxelles", "1000", "Rue Neuve 12"),
)

NOTES = {
    "fr": (
        "Merci de laisser le colis chez la gardienne.",
        "C'est un cadeau : pas de facture dans le colis, s'il vous plaît.",
    ),
    "en": (
        "Please ring twice, the bell is faint.",
        "It is a present: please leave the invoice out of the parcel.",
    ),
}
"""What customers write in the order's note field, by their locale."""
