"""scripts/setup.sh installs only what is missing: a second run calls neither apt-get nor pip.

Run where the system packages are present (make test runs setup.sh first), with apt-get, sudo and
the virtualenv's pip replaced by stubs that record their calls.
"""

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> "{log}"\n'


def _run_setup(tmp_path: Path, *, stamp: str | None) -> list[str]:
    log = tmp_path / "calls.log"
    log.touch()
    stubs = tmp_path / "stubs"
    venv = tmp_path / "venv"
    for command in (stubs / "apt-get", stubs / "sudo", venv / "bin" / "pip", venv / "bin" / "python"):
        command.parent.mkdir(parents=True, exist_ok=True)
        command.write_text(STUB.format(log=log))
        command.chmod(0o755)
    if stamp is not None:
        (venv / ".requirements-dev.sha").write_text(stamp + "\n")
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "VENV": str(venv)}
    subprocess.run([str(ROOT / "scripts" / "setup.sh")], env=env, check=True, capture_output=True, timeout=120)
    return log.read_text().splitlines()


def _installed_stamp() -> str:
    """What setup.sh writes after installing the dev lock (and lint.txt)."""
    text = (ROOT / "requirements" / "dev.lock").read_bytes() + (ROOT / "requirements" / "lint.txt").read_bytes()
    return hashlib.sha256(text).hexdigest()


def test_nothing_is_installed_when_everything_is_present(tmp_path: Path) -> None:
    assert _run_setup(tmp_path, stamp=_installed_stamp()) == []


def test_the_virtualenv_is_installed_again_when_the_lock_changed(tmp_path: Path) -> None:
    calls = _run_setup(tmp_path, stamp="an older lock")
    assert not [call for call in calls if call.startswith(("apt-get", "sudo"))]
    assert any(call.startswith("pip install -q --require-hashes -r requirements/dev.lock") for call in calls), calls
