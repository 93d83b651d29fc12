"""Fixtures shared by the hostile suites."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.hostile.innocent import Innocent


@pytest.fixture()
def innocent(demo: dict[str, Any]) -> Iterator[Innocent]:
    """An innocent client on the demo server for the duration of the test; it must have been served."""
    with Innocent(demo) as client:
        yield client
    client.assert_served()
