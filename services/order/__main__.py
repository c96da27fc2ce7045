"""Entry point of the order service: `python -m services.order`."""

from services.kit.runtime import serve
from services.order.app import OrderSettings, create_app


def main() -> None:
    settings = OrderSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
