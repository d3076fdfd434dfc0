"""The stack's PostgreSQL starts as root from a checkout that other users cannot enter.

As root, PostgreSQL runs as the postgres user, who cannot reach a run directory under a private
(0700) directory: its files live in a directory of the postgres user's own outside it.
"""

import os
import pwd
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from scripts import devstack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only as root does PostgreSQL run as another user (postgres)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[devstack.Stack]:
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    stack = devstack.Stack(run_dir=private / "checkout" / ".run", pg_port=_free_port())
    yield stack
    devstack.stop_postgres(stack)
    shutil.rmtree(stack.postgres_dir, ignore_errors=True)


def test_postgres_runs_for_a_checkout_in_a_private_directory(private_stack: devstack.Stack) -> None:
    devstack.start_postgres(private_stack)

    url = private_stack.database_url("users").replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone() == ("users_svc",)
    conn.close()
    info = private_stack.postgres_dir.stat()
    assert not private_stack.postgres_dir.is_relative_to(private_stack.run_dir.parent.parent)
    assert (info.st_uid, info.st_mode & 0o777) == (pwd.getpwnam("postgres").pw_uid, 0o700)


def test_a_directory_of_that_name_owned_by_someone_else_is_refused(private_stack: devstack.Stack) -> None:
    private_stack.postgres_dir.mkdir(mode=0o700)  # root's, not the postgres user's
    with pytest.raises(SystemExit, match="not a directory of the postgres user's only"):
        devstack.start_postgres(private_stack)
    assert not private_stack.pgdata.exists()
