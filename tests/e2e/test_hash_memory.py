"""A burst of password hashes against a users API in a memory cgroup: it waits or answers 503, never dies.

The process runs in a cgroup of its own whose limit leaves room for one 64 MiB hash beside the
process itself (USERS_PROCESS_MEMORY_MIB). The hash concurrency it derives from that limit is
one; the machine's cores would allow two, which this limit cannot hold. Needs permission to
create cgroups (root, as on CI); skipped otherwise.
"""

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.stack import Stack
from tests.utils.processes import another_users_api

MIB = 1024 * 1024
# Measured here: the API process is charged about 75 MiB idle, 143 MiB at most with one hash at
# a time, 206 MiB with two (and with two slots this limit kills it: checked by hand).
PROCESS_MIB = 100  # USERS_PROCESS_MEMORY_MIB: what the process needs besides its hashes
LIMIT_MIB = PROCESS_MIB + 90  # one 64 MiB hash fits, two do not
CGROUP = Path("/sys/fs/cgroup")


def _own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (controller == "" and controllers == ""):
            return path
    raise LookupError(controller)


def _make_cgroup(name: str, limit: int) -> tuple[Path, Path, Path]:
    """A child of this process's memory cgroup (v2 or v1): its directory, its limit file, its OOM counter."""
    controllers = CGROUP / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():  # v2
        directory = CGROUP / _own_cgroup("").lstrip("/") / name
        limit_file, events = directory / "memory.max", directory / "memory.events"
    else:  # v1
        directory = CGROUP / "memory" / _own_cgroup("memory").lstrip("/") / name
        limit_file, events = directory / "memory.limit_in_bytes", directory / "memory.oom_control"
    directory.mkdir()
    limit_file.write_text(str(limit))
    return directory, limit_file, events


def _oom_kills(events: Path) -> int:
    counts = dict(line.split() for line in events.read_text().splitlines())
    return int(counts.get("oom_kill", 0))


@pytest.fixture
def confined_users_api(infra: Stack) -> Iterator[tuple[str, Path]]:
    try:
        directory, _, events = _make_cgroup(f"hash-burst-{uuid.uuid4().hex[:8]}", LIMIT_MIB * MIB)
    except (OSError, LookupError) as exc:
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    settings = {
        "USERS_PROCESS_MEMORY_MIB": str(PROCESS_MIB),
        "USERS_HASH_WAIT_SECONDS": "1",
        "USERS_HASH_CONCURRENCY": "",  # derived
        "USERS_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000",
        "USERS_LOGIN_RATE_LIMIT": "1000/minute",
    }
    join_cgroup = lambda: (directory / "cgroup.procs").write_text(str(os.getpid()))  # noqa: E731  # in the child, before exec
    try:
        with another_users_api(infra, "confined-users-api", infra.config.users_port + 90, settings, join_cgroup) as (url, process):
            yield url, events
            assert process.poll() is None, "the confined users API died"
    finally:
        directory.rmdir()


def test_a_hash_burst_in_a_small_memory_limit_waits_or_gets_503_and_kills_nothing(confined_users_api: tuple[str, Path]) -> None:
    url, events = confined_users_api

    def unknown_login(n: int) -> httpx.Response:
        # An unknown email still costs a full hash (against the dummy hash).
        body = {"email": f"nobody-{n}-{uuid.uuid4().hex[:6]}@example.com", "password": "guess"}
        # From addresses of its own (198.19.0.0/16, never routed): the stack's limits share this Redis.
        return httpx.post(f"{url}/v1/auth/login", json=body, headers={"X-Forwarded-For": f"198.19.0.{n}"}, timeout=60)

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(unknown_login, range(60)))
    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {401, 503}, codes
    assert all(int(r.headers["Retry-After"]) > 0 for r in answers if r.status_code == 503)
    assert _oom_kills(events) == 0
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
