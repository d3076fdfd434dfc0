"""Every test sees the test stack's settings; integration and e2e tests also start its servers."""

from collections.abc import Iterator

import pytest

from tests.stack import Stack

_stack = Stack()


@pytest.fixture(scope="session", autouse=True)
def stack() -> Iterator[Stack]:
    """The test stack. Its settings are in the environment while tests run: the worker code that
    integration tests call in process reads them there, as a worker does when it starts. (The APIs
    take theirs from ``create_app(settings)``; no module reads the environment when imported.)"""
    with pytest.MonkeyPatch.context() as environment:
        for name, value in _stack.env.items():
            if name != "PATH":
                environment.setenv(name, value)
        yield _stack


@pytest.fixture(scope="session")
def infra(stack: Stack) -> Stack:
    """A real PostgreSQL (migrated with alembic upgrade head) and a real Redis."""
    stack.start_infra()
    return stack
