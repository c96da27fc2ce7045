"""Entry point of the operations view and dashboard: `python -m services.operations`."""

from services.kit.runtime import serve
from services.operations.app import OperationsSettings, create_app


def main() -> None:
    settings = OperationsSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
