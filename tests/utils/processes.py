"""More processes of the system beside the test stack's own."""

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from tests.stack import ROOT, Stack, command_line, wait_until


@contextmanager
def another_users_api(
    stack: Stack, name: str, port: int, settings: dict[str, str], preexec_fn: Callable[[], object] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One more users API process (the Procfile's command on another port), beside the stack's."""
    command = command_line(stack, "users-api")
    command[command.index("--port") + 1] = str(port)
    env = {**stack.env, **settings}
    for unset in [k for k, v in settings.items() if v == ""]:
        env.pop(unset)  # the service's default
    with (stack.logs / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, timeout=60, what=name)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def stopped(stack: Stack, name: str) -> Iterator[None]:
    """One of the stack's processes stopped for a while (as between two releases), then started again."""
    stack.stop(name)
    try:
        yield
    finally:
        stack.start(name)


@contextmanager
def restarted_with(stack: Stack, name: str, settings: dict[str, str]) -> Iterator[None]:
    """One of the stack's processes running with other settings for a while, then as it was."""
    stack.stop(name)
    saved = dict(stack.env)
    stack.env.update(settings)
    try:
        stack.start(name)
        yield
    finally:
        stack.stop(name)
        stack.env.clear()
        stack.env.update(saved)
        stack.start(name)
