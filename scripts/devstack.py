#!/usr/bin/env python3
"""Run the whole system on this machine without Docker.

    python scripts/devstack.py up        # PostgreSQL, Redis, migrations, then every process (honcho)
    python scripts/devstack.py infra     # only PostgreSQL and Redis (started in the background)
    python scripts/devstack.py down      # stop PostgreSQL and Redis
    python scripts/devstack.py env       # print the environment the processes run with
    python scripts/devstack.py run CMD   # run a command with that environment (make operator uses it)
    python scripts/devstack.py clean     # stop them and remove .run (and, as root, PostgreSQL's files)

PostgreSQL and Redis are started from the Debian packages in a private directory (.run/ by
default) on their own ports, unless DEVSTACK_DATABASE_URL / DEVSTACK_BROKER_URL point at
servers of your own. Ports and directories come from DEVSTACK_* variables (see ``Stack``), so
the test suite runs a second stack beside a running one.

Set up as production is, with development secrets: each service connects to PostgreSQL as its
own role (no superuser; only it may connect to its database), Redis asks for a password, and
the services trust X-Forwarded-For from the gateway's address only.

Run as root, PostgreSQL runs as the Debian package's postgres user, which may not be able to
enter the checkout (a clone under a private 0700 directory). Its files (data, socket, log) then
live in a postgres-owned directory outside the checkout, one per run directory:
/var/tmp/devstack-postgres-<hash of the run directory> (``Stack.postgres_dir``).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("users", "profile", "emails")
# Development only (the servers listen on 127.0.0.1): production takes its own from .env.
DEV_REDIS_PASSWORD = "devstack-redis"  # noqa: S105
# As root, PostgreSQL's files go here (see Stack.postgres_dir): reachable by the postgres user.
POSTGRES_PARENT = Path("/var/tmp")  # noqa: S108


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass
class Stack:
    run_dir: Path = field(default_factory=lambda: Path(os.environ.get("DEVSTACK_RUN_DIR", ROOT / ".run")).resolve())
    pg_port: int = field(default_factory=lambda: _env_int("DEVSTACK_PG_PORT", 55432))
    redis_port: int = field(default_factory=lambda: _env_int("DEVSTACK_REDIS_PORT", 56379))
    users_port: int = field(default_factory=lambda: _env_int("DEVSTACK_USERS_PORT", 8007))
    profile_port: int = field(default_factory=lambda: _env_int("DEVSTACK_PROFILE_PORT", 8008))
    emails_port: int = field(default_factory=lambda: _env_int("DEVSTACK_EMAILS_PORT", 8009))
    gateway_port: int = field(default_factory=lambda: _env_int("DEVSTACK_GATEWAY_PORT", 8080))
    flower_port: int = field(default_factory=lambda: _env_int("DEVSTACK_FLOWER_PORT", 5555))
    smtp_port: int = field(default_factory=lambda: _env_int("DEVSTACK_SMTP_PORT", 1025))
    mail_http_port: int = field(default_factory=lambda: _env_int("DEVSTACK_MAIL_HTTP_PORT", 8025))
    # Prometheus metrics of the processes that have no API port of their own (docs/operations.md).
    users_worker_metrics_port: int = field(default_factory=lambda: _env_int("DEVSTACK_USERS_WORKER_METRICS_PORT", 9101))
    profile_worker_metrics_port: int = field(default_factory=lambda: _env_int("DEVSTACK_PROFILE_WORKER_METRICS_PORT", 9102))
    emails_worker_metrics_port: int = field(default_factory=lambda: _env_int("DEVSTACK_EMAILS_WORKER_METRICS_PORT", 9103))
    users_relay_metrics_port: int = field(default_factory=lambda: _env_int("DEVSTACK_USERS_RELAY_METRICS_PORT", 9104))
    mail_worker_metrics_port: int = field(default_factory=lambda: _env_int("DEVSTACK_MAIL_WORKER_METRICS_PORT", 9105))

    @property
    def postgres_dir(self) -> Path:
        """Where PostgreSQL keeps its data, socket and log.

        As root, the server runs as the postgres user, who may not be able to enter the checkout:
        then a directory of its own under /var/tmp (kept across reboots, unlike /tmp), named
        after the run directory so that every checkout and test offset has its own.
        """
        if os.geteuid() != 0:
            return self.run_dir
        key = hashlib.sha256(str(self.run_dir).encode()).hexdigest()[:16]
        return POSTGRES_PARENT / f"devstack-postgres-{key}"

    @property
    def pgdata(self) -> Path:
        return self.postgres_dir / "pgdata"

    def database_url(self, service: str) -> str:
        base = os.environ.get("DEVSTACK_DATABASE_URL")
        if base:  # a server of your own: one database per service beside the given one
            return base.rsplit("/", 1)[0] + f"/{service}"
        return f"postgresql+psycopg2://{service_role(service)}@127.0.0.1:{self.pg_port}/{service}"

    @property
    def broker_url(self) -> str:
        return os.environ.get("DEVSTACK_BROKER_URL", f"redis://:{DEV_REDIS_PASSWORD}@127.0.0.1:{self.redis_port}/0")

    def env(self) -> dict[str, str]:
        """The environment every process of the stack runs with."""
        env = {
            # This interpreter's bin (the virtualenv's uvicorn, celery, alembic, honcho) and nginx's.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/sbin", os.environ.get("PATH", "")]),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "RUN_DIR": str(self.run_dir),
            "BROKER_URL": self.broker_url,
            "USERS_PORT": str(self.users_port),
            "PROFILE_PORT": str(self.profile_port),
            "EMAILS_PORT": str(self.emails_port),
            "FLOWER_PORT": str(self.flower_port),
            "SMTP_PORT": str(self.smtp_port),
            "MAIL_HTTP_PORT": str(self.mail_http_port),
            "EMAILS_SMTP_HOST": "127.0.0.1",
            "EMAILS_SMTP_PORT": str(self.smtp_port),
            # uvicorn: X-Forwarded-For is believed from the gateway only, which runs here.
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "USERS_WORKER_METRICS_PORT": str(self.users_worker_metrics_port),
            "PROFILE_WORKER_METRICS_PORT": str(self.profile_worker_metrics_port),
            "EMAILS_WORKER_METRICS_PORT": str(self.emails_worker_metrics_port),
            "USERS_RELAY_METRICS_PORT": str(self.users_relay_metrics_port),
            # The Procfile gives it to the emails mail worker as its EMAILS_WORKER_METRICS_PORT.
            "MAIL_WORKER_METRICS_PORT": str(self.mail_worker_metrics_port),
        }
        for service in SERVICES:
            env[f"{service.upper()}_DATABASE_URL"] = self.database_url(service)
            env[f"{service.upper()}_BROKER_URL"] = self.broker_url
        return env


def service_role(service: str) -> str:
    """The PostgreSQL role a service connects as (docker/postgres/create-databases.sh makes it)."""
    return f"{service}_svc"


def _run_as_postgres(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """PostgreSQL refuses to run as root: then as the Debian package's postgres user, from /
    (that user may not be able to enter the current directory, a private checkout)."""
    if os.geteuid() != 0:
        return subprocess.run(cmd, **kwargs)
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], cwd="/", **kwargs)


def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if candidates:
        return str(Path(candidates[-1]) / name)
    found = shutil.which(name)
    if not found:
        sys.exit(f"devstack: {name} not found; install PostgreSQL (apt-get install postgresql)")
    return found


def _prepare_postgres_dir(stack: Stack) -> None:
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    _stop_postgres_in_run_dir(stack)
    directory = stack.postgres_dir
    postgres = pwd.getpwnam("postgres")
    try:
        directory.mkdir(mode=0o700)
        os.chown(directory, postgres.pw_uid, postgres.pw_gid)
    except FileExistsError:
        pass
    # The name is predictable in a world-writable directory: use it only if it is what we made.
    info = directory.lstat()
    if not directory.is_dir() or directory.is_symlink() or info.st_uid != postgres.pw_uid or info.st_mode & 0o077:
        sys.exit(f"devstack: {directory} is not a directory of the postgres user's only (mode 0700); remove it and start again")


def _stop_postgres_in_run_dir(stack: Stack) -> None:
    """As root, earlier versions kept PostgreSQL's data in the run directory: stop that server, which holds the port."""
    legacy = stack.run_dir / "pgdata"
    if (legacy / "postmaster.pid").exists():
        _run_as_postgres([_pg_bin("pg_ctl"), "-D", str(legacy), "-m", "fast", "stop"], stdout=subprocess.DEVNULL)


def start_postgres(stack: Stack) -> None:
    if os.environ.get("DEVSTACK_DATABASE_URL"):
        return
    _prepare_postgres_dir(stack)
    if not (stack.pgdata / "PG_VERSION").exists():
        _run_as_postgres(
            [_pg_bin("initdb"), "-D", str(stack.pgdata), "-U", "app", "--auth=trust", "-E", "UTF8", "--no-instructions"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    status = _run_as_postgres([_pg_bin("pg_ctl"), "-D", str(stack.pgdata), "status"], capture_output=True)
    if status.returncode != 0:
        _refuse_taken_port(stack.pg_port, "PostgreSQL")
        options = f"-p {stack.pg_port} -k {stack.postgres_dir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off"
        _run_as_postgres(
            [_pg_bin("pg_ctl"), "-D", str(stack.pgdata), "-l", str(stack.postgres_dir / "postgres.log"), "-w", "-o", options, "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    # The superuser `app` (trusted locally) makes a role and a database per service, as the
    # postgres container's init does in Docker.
    subprocess.run(
        ["sh", str(ROOT / "docker" / "postgres" / "create-databases.sh")],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "POSTGRES_USER": "app", "PGHOST": "127.0.0.1", "PGPORT": str(stack.pg_port)},
    )


def _refuse_taken_port(port: int, what: str) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(
                f"devstack: port {port}, where this stack's {what} should run, is taken by another process "
                "(another checkout's stack?). Stop it, or move this stack's ports (DEVSTACK_*_PORT, TEST_PORT_OFFSET)."
            )


def stop_postgres(stack: Stack) -> None:
    if (stack.pgdata / "postmaster.pid").exists():
        _run_as_postgres([_pg_bin("pg_ctl"), "-D", str(stack.pgdata), "-m", "fast", "stop"], stdout=subprocess.DEVNULL)


def _redis_cli(stack: Stack, *args: str) -> str:
    env = {**os.environ, "REDISCLI_AUTH": DEV_REDIS_PASSWORD}  # not on the command line: ps shows that
    return subprocess.run(["redis-cli", "-p", str(stack.redis_port), *args], capture_output=True, text=True, env=env).stdout.strip()


def start_redis(stack: Stack) -> None:
    if os.environ.get("DEVSTACK_BROKER_URL"):
        return
    redis_dir = stack.run_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    if _redis_cli(stack, "ping") == "PONG" and (redis_dir / "redis.pid").exists():
        # Ours, running; one started before Redis had a password gets it now.
        _redis_cli(stack, "config", "set", "requirepass", DEV_REDIS_PASSWORD)
        return
    _refuse_taken_port(stack.redis_port, "Redis")
    # The password through the config on stdin ("-"), not the command line.
    subprocess.run(
        [
            "redis-server", "--port", str(stack.redis_port), "--bind", "127.0.0.1", "--dir", str(redis_dir),
            "--daemonize", "yes", "--pidfile", str(redis_dir / "redis.pid"), "--logfile", str(redis_dir / "redis.log"),
            "--appendonly", "yes", "--maxmemory-policy", "noeviction", "--save", "", "-",
        ],
        input=f"requirepass {DEV_REDIS_PASSWORD}\n",
        text=True,
        check=True,
    )  # fmt: skip
    for _ in range(50):
        if _redis_cli(stack, "ping") == "PONG":
            return
        time.sleep(0.1)
    sys.exit("devstack: redis did not start")


def stop_redis(stack: Stack) -> None:
    _redis_cli(stack, "shutdown", "nosave")


def migrate(stack: Stack) -> None:
    env = {**os.environ, **stack.env()}
    for service in SERVICES:
        subprocess.run(["alembic", "-c", str(ROOT / f"{service}_svc" / "alembic.ini"), "upgrade", "head"], check=True, env=env)


def render_gateway(
    stack: Stack, nginx_dir: Path | None = None, port: int | None = None, tls_port: int | None = None, docs: bool | None = None
) -> Path:
    """nginx with the repository's gateway config, its upstreams pointed at local ports.

    With certs/fullchain.pem and certs/privkey.pem in nginx_dir and a tls_port, it also serves
    HTTPS there and redirects plain HTTP to it, as the image does (nginx/40-gateway-tls.sh).
    With docs (by default GATEWAY_DOCS, on unless it says off) it serves the API docs at /docs/
    (nginx/docs.conf), as the image does with GATEWAY_DOCS=on (nginx/45-gateway-docs.sh).
    """
    if docs is None:
        docs = os.environ.get("GATEWAY_DOCS", "on") != "off"
    nginx_dir = nginx_dir or stack.run_dir / "nginx"
    (nginx_dir / "logs").mkdir(parents=True, exist_ok=True)
    values = {
        "USERS_UPSTREAM": f"127.0.0.1:{stack.users_port}",
        "PROFILE_UPSTREAM": f"127.0.0.1:{stack.profile_port}",
        "EMAILS_UPSTREAM": f"127.0.0.1:{stack.emails_port}",
        "FLOWER_UPSTREAM": f"127.0.0.1:{stack.flower_port}",
        "GATEWAY_UPSTREAM_RESOLVE": "",  # addresses, nothing to look up: plain keepalive upstreams
        "GATEWAY_PORT": str(port or stack.gateway_port),
        "GATEWAY_TLS_PORT": str(tls_port),
        "GATEWAY_HTTPS_PORT_SUFFIX": "" if tls_port == 443 else f":{tls_port}",
    }

    def render(template: Path) -> str:
        text = template.read_text()
        for name, value in values.items():
            text = text.replace("${" + name + "}", value)
        return text

    (nginx_dir / "gateway.conf").write_text(render(ROOT / "nginx" / "templates" / "gateway.conf.template"))
    tls_dir = nginx_dir / "gateway-tls"
    tls_dir.mkdir(exist_ok=True)
    (tls_dir / "tls.conf").unlink(missing_ok=True)
    if tls_port and (nginx_dir / "certs" / "fullchain.pem").exists() and (nginx_dir / "certs" / "privkey.pem").exists():
        (tls_dir / "tls.conf").write_text(render(ROOT / "nginx" / "tls.conf.template"))
    docs_dir = nginx_dir / "gateway-docs"
    docs_dir.mkdir(exist_ok=True)
    (docs_dir / "docs.conf").unlink(missing_ok=True)
    if docs:
        shutil.copyfile(ROOT / "nginx" / "docs.conf", docs_dir / "docs.conf")
    (nginx_dir / "nginx.conf").write_text(
        "worker_processes 1;\npid nginx.pid;\nerror_log stderr;\nevents { worker_connections 1024; }\n"
        # Every temp path inside the prefix: as a user other than root (CI runners) nginx cannot
        # create its compiled-in ones under /var/lib/nginx.
        "http {\n  access_log /dev/stdout;\n  client_body_temp_path tmp;\n  proxy_temp_path tmp;\n"
        "  fastcgi_temp_path tmp;\n  uwsgi_temp_path tmp;\n  scgi_temp_path tmp;\n"
        "  include " + str(nginx_dir / "gateway.conf") + ";\n}\n"
    )
    (nginx_dir / "tmp").mkdir(exist_ok=True)
    return nginx_dir


def clean(stack: Stack) -> None:
    """Stop PostgreSQL and Redis and remove their files, for this stack and the test stacks in .run; then .run."""
    run_dirs = {stack.run_dir, *(d.resolve() for d in (ROOT / ".run").glob("test*") if d.is_dir())}
    for run_dir in run_dirs:
        other = Stack(run_dir=run_dir)
        _stop_redis_by_pidfile(other)
        stop_postgres(other)
        if other.postgres_dir != run_dir:
            shutil.rmtree(other.postgres_dir, ignore_errors=True)
    shutil.rmtree(ROOT / ".run", ignore_errors=True)


def _stop_redis_by_pidfile(stack: Stack) -> None:
    # A test stack's ports are not known here; its pid file is.
    pidfile = stack.run_dir / "redis" / "redis.pid"
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def infra(stack: Stack) -> None:
    start_postgres(stack)
    start_redis(stack)
    migrate(stack)
    render_gateway(stack)


def main(argv: list[str]) -> None:
    stack = Stack()
    command = argv[1] if len(argv) > 1 else "up"
    if command == "infra":
        infra(stack)
    elif command == "down":
        stop_redis(stack)
        stop_postgres(stack)
    elif command == "clean":
        clean(stack)
    elif command == "env":
        for key, value in stack.env().items():
            print(f"{key}={value}")
    elif command == "run" and len(argv) > 2:
        os.execvpe(argv[2], argv[2:], {**os.environ, **stack.env()})  # noqa: S606  # the command asked for
    elif command == "up":
        infra(stack)
        env = {**os.environ, **stack.env()}
        print(
            f"users :{stack.users_port}  profile :{stack.profile_port}  emails :{stack.emails_port}  "
            f"gateway :{stack.gateway_port}  flower :{stack.flower_port}  mail inbox :{stack.mail_http_port}",
            flush=True,
        )
        os.execvpe(  # noqa: S606  # replaces this process with honcho
            "honcho",
            ["honcho", "-d", str(ROOT), "-f", str(ROOT / "Procfile"), "start"],
            env,
        )
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
