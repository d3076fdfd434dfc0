"""End-to-end: every process of the Procfile, started for real on the test ports."""

from collections.abc import Iterator

import httpx
import pytest

from tests.stack import Stack


@pytest.fixture(scope="session")
def system(infra: Stack) -> Iterator[Stack]:
    infra.reset_data()
    infra.start_all()
    yield infra
    infra.stop_all()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client
