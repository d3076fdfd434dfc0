"""How many Argon2 hashes at once: read from cgroup limits (v1 and v2), shared among API workers."""

import os
from pathlib import Path

import pytest

from users_svc.hashing import MIB, Resources, hash_concurrency, read_resources

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
