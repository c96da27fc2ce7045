"""Entry point of the fulfilment service: `python -m services.fulfilment`."""

from services.fulfilment.app import FulfilmentSettings, create_app
from services.kit.runtime import serve


def main() -> None:
    settings = FulfilmentSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
