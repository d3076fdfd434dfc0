"""Every test sees the test stack's settings; integration and e2e tests also start its servers."""

import os

import pytest

from tests.stack import Stack

_stack = Stack()


def pytest_configure(config: pytest.Config) -> None:
    """The stack's settings in the environment, as a worker has them when it starts: integration
    tests call worker tasks in process, and collecting them configures the workers' Celery apps.
    (The APIs take theirs from ``create_app(settings)``; no module reads the environment when imported.)
    The metrics ports are the stack's processes' only: workers started in the tests' process serve none."""
    os.environ.update({k: v for k, v in _stack.env.items() if k != "PATH" and not k.endswith("_METRICS_PORT")})


@pytest.fixture(scope="session")
def stack() -> Stack:
    return _stack


@pytest.fixture(scope="session")
def infra(stack: Stack) -> Stack:
    """A real PostgreSQL (migrated with alembic upgrade head) and a real Redis."""
    stack.start_infra()
    return stack
