"""Password hashing within the memory and cores the container really has.

An Argon2id hash holds its whole memory cost (64 MiB by default) while it runs, so the number of
hashes at once is bounded by the memory left after the API processes themselves, and by the
cores (more hashes than cores only queue). Both are read from the cgroup limits (v2 or v1) and
the CPU affinity, not from the host, and shared among the API workers of the container:

    memory_slots = floor((memory - workers * process_memory) / (workers * hash_memory))
    cpu_slots    = ceil(cpus / workers)
    per process  = max(1, min(memory_slots, cpu_slots))

A request that finds every slot taken waits up to ``USERS_HASH_WAIT_SECONDS``, then gets a 503
with Retry-After, rather than a hash that would push the container out of memory. At most
``MAX_WAITING`` requests wait; more get the 503 at once, so that waiting requests never take
all the threads the other endpoints need (anyio's pool has 40).
"""

import logging
import math
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, status

log = logging.getLogger(__name__)

MIB = 1024 * 1024
RETRY_AFTER_SECONDS = 2  # a few hashes' time
MAX_WAITING = 24


@dataclass(frozen=True)
class Resources:
    memory_bytes: int
    cpus: int


def _read_int(path: Path) -> int | None:
    """An integer limit from a cgroup file; None when absent or unlimited ("max", v1's huge value)."""
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() and int(text) < 2**60 else None


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller -> path of this process's cgroup ("" for the v2 unified hierarchy)."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _along(base: Path, path: str) -> Iterator[Path]:
    """The cgroup's directory and its ancestors' (the tightest limit wins), the mount's root last."""
    parts = [part for part in path.split("/") if part]
    for depth in range(len(parts), -1, -1):
        yield base.joinpath(*parts[:depth])


def read_resources(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> Resources:
    """The memory and the cores this process may use: cgroup limits, affinity, the machine."""
    paths = _cgroup_paths(proc_cgroup)
    memory_limits: list[int] = []
    quotas: list[float] = []
    if "" in paths:  # cgroup v2
        for directory in _along(root, paths[""]):
            memory_limits += [v for v in [_read_int(directory / "memory.max")] if v]
            try:
                quota, period = (directory / "cpu.max").read_text().split()
                if quota != "max":
                    quotas.append(int(quota) / int(period))
            except (OSError, ValueError):
                pass
    if "memory" in paths:  # cgroup v1
        for directory in _along(root / "memory", paths["memory"]):
            memory_limits += [v for v in [_read_int(directory / "memory.limit_in_bytes")] if v]
    for mount in ("cpu", "cpu,cpuacct") if "cpu" in paths else ():
        for directory in _along(root / mount, paths["cpu"]):
            quota_us, period_us = _read_int(directory / "cpu.cfs_quota_us"), _read_int(directory / "cpu.cfs_period_us")
            if quota_us and period_us:
                quotas.append(quota_us / period_us)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpus = len(os.sched_getaffinity(0))
    if quotas:
        cpus = min(cpus, max(1, math.ceil(min(quotas))))
    return Resources(memory_bytes=min([physical, *memory_limits]), cpus=cpus)


def hash_concurrency(resources: Resources, *, workers: int, hash_memory_bytes: int, process_memory_bytes: int) -> int:
    """Hashes one API process may compute at once (the formula in the module's docstring)."""
    memory_slots = (resources.memory_bytes - workers * process_memory_bytes) // (workers * hash_memory_bytes)
    cpu_slots = math.ceil(resources.cpus / workers)
    return max(1, min(memory_slots, cpu_slots))


class HashSlots:
    """At most ``size`` hashes at once in this process; a bounded queue and wait, then 503."""

    def __init__(self, size: int, wait_seconds: float) -> None:
        self.size = size
        self.wait_seconds = wait_seconds
        self.max_waiting = MAX_WAITING
        self.waiting = 0
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()

    def _busy(self, why: str) -> HTTPException:
        log.warning("every hash slot (%d) busy, %s: answering 503", self.size, why)
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "too many passwords being checked, try again",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self.waiting >= self.max_waiting:
                    raise self._busy(f"{self.waiting} requests already waiting")
                self.waiting += 1
            try:
                acquired = self._slots.acquire(timeout=self.wait_seconds)
            finally:
                with self._lock:
                    self.waiting -= 1
            if not acquired:
                raise self._busy(f"waited {self.wait_seconds:g} s")
        try:
            yield
        finally:
            self._slots.release()


class Passwords:
    """Hashing and checking passwords with Argon2id, each within a hash slot."""

    def __init__(self, hasher: PasswordHasher, slots: HashSlots) -> None:
        self.hasher = hasher
        self.slots = slots
        # Checked against when an email is unknown, so that costs what a wrong password costs.
        self.dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        with self.slots.slot():  # as many at once as memory and cores allow
            return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` is the one hashed; with no hash (an unknown email) the dummy's cost, and False."""
        with self.slots.slot():
            try:
                return self.hasher.verify(password_hash or self.dummy_hash, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)
