"""Every test sees the test stack's settings; integration and e2e tests also start its servers."""

import os

import pytest

from tests.stack import Stack

# Before any service module is imported: their settings are read from the environment. The metrics
# ports are the stack's processes' only: workers and apps started in the tests' process serve none.
_stack = Stack()
os.environ.update({k: v for k, v in _stack.env.items() if k != "PATH" and not k.endswith("_METRICS_PORT")})


@pytest.fixture(scope="session")
def stack() -> Stack:
    return _stack


@pytest.fixture(scope="session")
def infra(stack: Stack) -> Stack:
    """A real PostgreSQL (migrated with alembic upgrade head) and a real Redis."""
    stack.start_infra()
    return stack
