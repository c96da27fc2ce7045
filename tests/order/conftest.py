from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.infrastructure import Infrastructure
from tests.order.scene import Scene, open_scene


@pytest.fixture(scope="module")
async def scene(infrastructure: Infrastructure) -> AsyncIterator[Scene]:
    """The order service running for the test module, with a small catalogue."""
    async with open_scene(infrastructure) as opened:
        yield opened
