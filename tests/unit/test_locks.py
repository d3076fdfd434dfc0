"""requirements/*.lock, which the images and the virtualenv install from, follow requirements/*.txt."""

import re
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _pins(text: str) -> dict[str, str]:
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in PIN.findall(text)}


@pytest.mark.parametrize("profile", ["base", "dev", "bench"])
def test_the_lock_holds_every_pin_of_its_requirements(profile: str) -> None:
    lock = (REQUIREMENTS / f"{profile}.lock").read_text()
    pinned = _pins((REQUIREMENTS / f"{profile}.txt").read_text())
    locked = _pins(lock)
    stale = {name: version for name, version in pinned.items() if locked.get(name) != version}
    assert not stale, f"requirements/{profile}.lock is stale for {stale}: run `make lock`"


@pytest.mark.parametrize("profile", ["base", "dev", "bench"])
def test_every_locked_requirement_has_hashes(profile: str) -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", (REQUIREMENTS / f"{profile}.lock").read_text().split("\n", 2)[2])
    assert entries
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_development_locks_agree_with_the_runtime_lock() -> None:
    """Tests run against the versions the images ship."""
    base = _pins((REQUIREMENTS / "base.lock").read_text())
    for profile in ("dev", "bench"):
        locked = _pins((REQUIREMENTS / f"{profile}.lock").read_text())
        assert {name: locked.get(name) for name in base} == base, profile
