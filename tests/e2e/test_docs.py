"""The documentation's commands, checked so the docs cannot rot silently.

Every shell block in README.md, CONTRIBUTING.md and docs/ is fenced as one of:
- ```sh: runnable. Each page's blocks run in order, in one bash, against the test stack (the
  documented ports rewritten to the test ports), on an empty system; a failing command or an
  HTTP error fails the test.
- ```console: commands that need more than the test stack (Docker, a whole test run, another
  terminal). Each is checked for what can go stale: a make target exists, a pytest selection
  still collects tests, a compose file and the services it names exist, a script or path exists.
A command this file does not know how to check fails the test: make it runnable, or teach
``_check_console_command`` what to check.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.stack import ROOT, Stack

PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])
SHELL_FENCES = {"sh", "console", "bash", "shell"}
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.M | re.S)
# Curl fails on HTTP errors, so a documented call that stopped working fails the test.
PRELUDE = 'set -euo pipefail\ncurl() { command curl --fail-with-body --show-error --max-time 30 "$@"; }\n'


def _blocks(page: Path) -> list[tuple[str, str]]:
    return [(fence, body) for fence, body in FENCE.findall(page.read_text()) if fence in SHELL_FENCES]


def _commands(body: str) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped."""
    joined = body.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(shlex.join(words))
    return commands


def _make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def _compose_services(file: str) -> set[str]:
    return set(yaml.safe_load((ROOT / file).read_text())["services"])


def _check_compose(words: list[str]) -> None:
    files = [words[i + 1] for i, word in enumerate(words) if word == "-f"] or ["docker-compose.yml"]
    for file in files:
        assert (ROOT / file).is_file(), f"no compose file {file}"
    services = set().union(*(_compose_services(file) for file in files))
    named = [w.split("=", 1)[0] for i, w in enumerate(words) if i and words[i - 1] == "--scale"]
    for verb in ("exec", "logs", "restart", "stop", "start"):
        if verb in words:
            rest = [w for w in words[words.index(verb) + 1 :] if not w.startswith("-")]
            named += rest[:1]
    for service in named:
        assert service in services, f"{shlex.join(words)}: no service {service} in {files}"


def _check_pytest(args: list[str]) -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    found = re.search(r"\d+ tests? collected", collected.stdout)
    assert found, f"pytest {shlex.join(args)} collects nothing:\n{collected.stdout[-2000:]}"


def _check_console_command(command: str, cwd: Path) -> Path:
    """Check one documented command; returns the directory the next command runs in."""
    words = shlex.split(command)
    program = words[0]
    if program == "cd":
        target = (cwd / words[1]).resolve()
        assert target.is_dir(), f"{command}: no directory {words[1]}"
        return target
    if program == "make":
        targets = [w for w in words[1:] if not w.startswith("-") and "=" not in w] or ["all"]
        for target in targets:
            assert target in _make_targets(), f"{command}: no make target {target}"
    elif program.endswith("bin/pytest"):
        _check_pytest(words[1:])
    elif program.endswith("bin/alembic"):
        assert (cwd / "alembic.ini").is_file(), f"{command}: no alembic.ini in {cwd}"
    elif program == "docker-compose" or words[:2] == ["docker", "compose"]:
        _check_compose(words[2:] if program == "docker" else words[1:])
    elif program in {"bash", "sh"} or program.startswith(("./", "scripts/")):
        script = words[1] if program in {"bash", "sh"} else program
        assert (cwd / script).is_file(), f"{command}: no script {script}"
    elif program in {"cp", "python3", "openssl"} or program.endswith("bin/pip") or program.endswith("bin/python"):
        for word in words[1:]:
            if "/" in word and not word.startswith(("-", "http")) and word.endswith((".py", ".txt", ".example", ".lock")):
                assert (cwd / word).is_file(), f"{command}: no file {word}"
    else:
        pytest.fail(f"the docs test does not know how to check: {command!r}")
    return cwd


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_shell_blocks_are_fenced_sh_or_console(page: Path) -> None:
    for fence, body in _blocks(page):
        assert fence in {"sh", "console"}, f"{page.name}: fence ```{fence} around {body[:60]!r}: use sh (runnable) or console"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_console_commands_still_hold(page: Path) -> None:
    for fence, body in _blocks(page):
        if fence != "console":
            continue
        cwd = ROOT
        for command in _commands(body):
            for part in command.split(" && "):
                cwd = _check_console_command(part, cwd)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_inline_make_targets_exist(page: Path) -> None:
    for target in re.findall(r"`make ([\w-]+)", page.read_text()):
        assert target in _make_targets(), f"{page.name} names `make {target}`, which the Makefile does not have"


RUNNABLE = [page for page in PAGES if any(fence == "sh" for fence, _ in _blocks(page))]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda page: str(page.relative_to(ROOT)))
def test_runnable_blocks_run(system: Stack, page: Path) -> None:
    system.reset_data()
    script = "\n".join(body for fence, body in _blocks(page) if fence == "sh")
    ports = {
        8007: system.config.users_port,
        8008: system.config.profile_port,
        8009: system.config.emails_port,
        8080: system.config.gateway_port,
        5555: system.config.flower_port,
        8025: system.config.mail_http_port,
        9101: system.config.users_worker_metrics_port,
        9102: system.config.profile_worker_metrics_port,
        9103: system.config.emails_worker_metrics_port,
        9104: system.config.users_relay_metrics_port,
        9105: system.config.mail_worker_metrics_port,
    }
    for documented, test_port in ports.items():
        script = re.sub(rf"\blocalhost:{documented}\b", f"localhost:{test_port}", script)
    ran = subprocess.run(["bash", "-c", PRELUDE + script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, f"{page.name}'s runnable blocks failed ({ran.returncode}):\n{ran.stdout[-2000:]}\n{ran.stderr[-2000:]}"
