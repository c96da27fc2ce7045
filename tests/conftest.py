from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infrastructure import Infrastructure, provide


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide() as infrastructure:
        yield infrastructure
