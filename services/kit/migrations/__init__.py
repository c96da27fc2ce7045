"""Run a service's migrations (the kit's branch plus its own) at start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

KIT_MIGRATIONS = Path(__file__).parent


def alembic_config(database_url: str, service_versions: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(KIT_MIGRATIONS))
    locations = [KIT_MIGRATIONS / "versions"]
    if service_versions.is_dir():
        locations.append(service_versions)
    config.set_main_option("version_locations", " ".join(str(path) for path in locations))
    config.set_main_option("path_separator", "space")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, service_versions: Path) -> None:
    """Blocking (Alembic runs its own event loop): call through `asyncio.to_thread`."""
    command.upgrade(alembic_config(database_url, service_versions), "heads")
