"""How many Argon2 hashes at once: read from cgroup limits (v1 and v2), shared among API workers."""

import os
import threading
from pathlib import Path

import pytest
from fastapi import HTTPException

from tests.stack import wait_until
from users_svc.hashing import MIB, HashSlots, Resources, hash_concurrency, read_resources

HASH = 64 * MIB
PROCESS = 160 * MIB
PHYSICAL = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
AFFINITY = len(os.sched_getaffinity(0))


def _tree(tmp_path: Path, files: dict[str, str], proc_cgroup: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_cgroup)
    return root, proc


def test_cgroup_v2_memory_and_cpu_limits(tmp_path: Path) -> None:
    root, proc = _tree(
        tmp_path,
        {"memory.max": "max", "cpu.max": "max 100000", "app/memory.max": str(512 * MIB), "app/cpu.max": "150000 100000"},
        "0::/app\n",
    )
    assert read_resources(root, proc) == Resources(memory_bytes=512 * MIB, cpus=min(AFFINITY, 2))


def test_cgroup_v2_inside_a_container_reads_the_root(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": str(256 * MIB), "cpu.max": "max 100000"}, "0::/\n")
    assert read_resources(root, proc) == Resources(memory_bytes=256 * MIB, cpus=AFFINITY)


def test_cgroup_v1_the_tightest_ancestor_wins(tmp_path: Path) -> None:
    root, proc = _tree(
        tmp_path,
        {
            "memory/memory.limit_in_bytes": "9223372036854771712",  # v1's "unlimited"
            "memory/outer/memory.limit_in_bytes": str(300 * MIB),
            "memory/outer/inner/memory.limit_in_bytes": str(400 * MIB),
            "cpu,cpuacct/outer/inner/cpu.cfs_quota_us": "-1",
            "cpu,cpuacct/outer/inner/cpu.cfs_period_us": "100000",
        },
        "5:memory:/outer/inner\n3:cpu,cpuacct:/outer/inner\n0::/\n",
    )
    assert read_resources(root, proc) == Resources(memory_bytes=300 * MIB, cpus=AFFINITY)


def test_cgroup_v1_in_a_container_whose_path_is_not_mounted(tmp_path: Path) -> None:
    # Docker without a cgroup namespace: /proc shows the host's path, the mount is the container's own.
    root, proc = _tree(
        tmp_path,
        {"memory/memory.limit_in_bytes": str(512 * MIB), "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"},
        "4:memory:/docker/0123abcd\n2:cpu,cpuacct:/docker/0123abcd\n",
    )
    assert read_resources(root, proc) == Resources(memory_bytes=512 * MIB, cpus=1)


def test_without_limits_the_machine(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {}, "")
    assert read_resources(root, proc) == Resources(memory_bytes=PHYSICAL, cpus=AFFINITY)


@pytest.mark.parametrize(
    ("memory_mib", "cpus", "workers", "expected"),
    [
        (512, 16, 2, 1),  # the production compose file: 512 MiB, two workers, on a big host
        (512, 1, 2, 1),
        (1024, 16, 2, 5),  # (1024 - 2 * 160) // (2 * 64): memory binds before the 16 / 2 cores
        (4096, 2, 1, 2),  # plenty of memory: one hash per core
        (4096, 3, 2, 2),  # ceil(3 / 2) cores each
        (200, 8, 1, 1),  # not even one fits: still one, or nothing could log in
    ],
)
def test_the_formula(memory_mib: int, cpus: int, workers: int, expected: int) -> None:
    resources = Resources(memory_bytes=memory_mib * MIB, cpus=cpus)
    assert hash_concurrency(resources, workers=workers, hash_memory_bytes=HASH, process_memory_bytes=PROCESS) == expected


def test_a_full_queue_gets_503_at_once_and_a_freed_slot_lets_the_waiting_in() -> None:
    slots = HashSlots(1, wait_seconds=60)
    slots.max_waiting = 1
    entered = threading.Event()

    def waiter() -> None:
        with slots.slot():
            entered.set()

    with slots.slot():
        thread = threading.Thread(target=waiter)
        thread.start()
        wait_until(lambda: slots.waiting == 1, what="the waiter to queue")
        with pytest.raises(HTTPException) as refused, slots.slot():
            pass
        assert (refused.value.status_code, refused.value.headers) == (503, {"Retry-After": "2"})
        assert not entered.is_set()
    thread.join(timeout=60)
    assert entered.is_set()
    assert slots.waiting == 0


def test_a_wait_that_runs_out_gets_503() -> None:
    slots = HashSlots(1, wait_seconds=0)
    with slots.slot(), pytest.raises(HTTPException) as refused, slots.slot():
        pass
    assert refused.value.status_code == 503
    with slots.slot():  # released again
        pass
