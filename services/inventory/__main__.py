"""Entry point of the inventory service: `python -m services.inventory`."""

from services.inventory.app import InventorySettings, create_app
from services.kit.runtime import serve


def main() -> None:
    settings = InventorySettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
