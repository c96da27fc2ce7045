"""Entry point of the notification service: `python -m services.notification`."""

from services.kit.runtime import serve
from services.notification.app import NotificationSettings, create_app


def main() -> None:
    settings = NotificationSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
