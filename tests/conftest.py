from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.infrastructure import Infrastructure, provide

# Every trace recorded in the tests (the shipped default samples a share of them): the
# tracing tests follow whole orders, and the services the tests start inherit this.
os.environ.setdefault("OMS_TRACE_SAMPLE_RATIO", "1")


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide() as infrastructure:
        yield infrastructure
