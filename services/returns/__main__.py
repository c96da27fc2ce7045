"""Entry point of the returns service: `python -m services.returns`."""

from services.kit.runtime import serve
from services.returns.app import ReturnsSettings, create_app


def main() -> None:
    settings = ReturnsSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
