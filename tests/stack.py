"""The system under test: the real processes of the Procfile, on test ports beside any dev stack."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg2
import redis

from scripts import devstack

ROOT = Path(__file__).resolve().parent.parent

SERVICES = devstack.SERVICES

# Beside a dev stack; TEST_PORT_OFFSET moves every port, for a second test run on the same machine.
_OFFSET = int(os.environ.get("TEST_PORT_OFFSET", "0"))
TEST_PORTS = {
    "DEVSTACK_RUN_DIR": str(ROOT / ".run" / (f"test-{_OFFSET}" if _OFFSET else "test")),
    **{
        name: str(port + _OFFSET)
        for name, port in {
            "DEVSTACK_PG_PORT": 55433,
            "DEVSTACK_REDIS_PORT": 56380,
            "DEVSTACK_USERS_PORT": 18007,
            "DEVSTACK_PROFILE_PORT": 18008,
            "DEVSTACK_EMAILS_PORT": 18009,
            "DEVSTACK_GATEWAY_PORT": 18080,
            "DEVSTACK_FLOWER_PORT": 15555,
            "DEVSTACK_SMTP_PORT": 11025,
            "DEVSTACK_MAIL_HTTP_PORT": 18025,
            "DEVSTACK_USERS_WORKER_METRICS_PORT": 19101,
            "DEVSTACK_PROFILE_WORKER_METRICS_PORT": 19102,
            "DEVSTACK_EMAILS_WORKER_METRICS_PORT": 19103,
            "DEVSTACK_USERS_RELAY_METRICS_PORT": 19104,
            "DEVSTACK_MAIL_WORKER_METRICS_PORT": 19105,
        }.items()
    },
}
# Short waits so failure paths finish quickly; failpoints on so tests can choose faults.
TEST_SETTINGS = {
    "SAGA_FAILPOINTS": "on",
    "USERS_SAGA_STALE_AFTER_SECONDS": "3",
    "USERS_REGISTER_WAIT_SECONDS": "5",
    "USERS_RELAY_INTERVAL_SECONDS": "0.2",
    "EMAILS_RETRY_BACKOFF_MAX_SECONDS": "2",
    "EMAILS_RELAY_INTERVAL_SECONDS": "0.5",
    "EMAILS_SMTP_TIMEOUT_SECONDS": "3",
    # The suites sign many users up from one address (tests/e2e/test_sessions.py checks the default).
    "USERS_REGISTER_RATE_LIMIT": "600/minute",
}
# For the load and fault scripts (bench, chaos, fuzz): all their traffic comes from one address,
# and they measure something else than the per-address throttle.
UNTHROTTLED = {
    "USERS_REGISTER_RATE_LIMIT": "1000000/second",
    "USERS_LOGIN_RATE_LIMIT": "1000000/second",
    "USERS_RESTORE_RATE_LIMIT": "1000000/second",
}
TABLES = {
    "users": ["saga_event", "outbox_message", "saga_step", "saga", "user_account"],
    "profile": ["subscription", "profile", "saga_step_log"],
    "emails": ["message", "recipient", "saga_step_log"],
}


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> object:
    """Poll until predicate returns something truthy; the bound only keeps a broken run finite."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except Exception:  # not ready yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


class Stack:
    def __init__(self) -> None:
        os.environ.update(TEST_PORTS)
        self.config = devstack.Stack()
        self.env = {**os.environ, **self.config.env(), **TEST_SETTINGS}
        self.logs = self.config.run_dir / "logs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log_offsets: dict[str, int] = {}
        self.commands = dict(
            line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip() and not line.startswith("#")
        )

    # infrastructure
    def start_infra(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        devstack.start_postgres(self.config)
        devstack.start_redis(self.config)
        devstack.migrate(self.config)
        devstack.render_gateway(self.config)

    def stop_redis(self) -> None:
        devstack.stop_redis(self.config)

    def start_redis(self) -> None:
        devstack.start_redis(self.config)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.config.broker_url)

    def db(self, service: str) -> psycopg2.extensions.connection:
        url = self.config.database_url(service).replace("postgresql+psycopg2://", "postgresql://")
        conn = psycopg2.connect(url)
        conn.autocommit = True
        return conn

    def query(self, service: str, sql: str, *params: object) -> list[tuple[object, ...]]:
        with self.db(service) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.close()
        return rows

    def reset_data(self) -> None:
        """Empty every table (ids restart at 1) and the broker."""
        for service, tables in TABLES.items():
            self.query(service, f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        self.redis().flushall()
        (self.config.run_dir / "mail.jsonl").unlink(missing_ok=True)

    # processes
    def start(self, name: str) -> None:
        command = self.commands[name].strip()
        log_path = self.logs / f"{name}.log"
        self.log_offsets[name] = log_path.stat().st_size if log_path.exists() else 0  # what this run writes comes after
        with log_path.open("ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_ready(name)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children at once, as a crashed host would."""
        self.stop(name, signal.SIGKILL)

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def wait_ready(self, name: str) -> None:
        ports = {
            "users-api": self.config.users_port,
            "profile-api": self.config.profile_port,
            "emails-api": self.config.emails_port,
            "gateway": self.config.gateway_port,
            "flower": self.config.flower_port,
            "mail": self.config.mail_http_port,
        }
        process = self.processes[name]

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.logs / (name + '.log')}")
            if name in ports:
                path = {"flower": "/flower/healthcheck", "mail": "/"}.get(name, "/healthz")
                return httpx.get(f"http://127.0.0.1:{ports[name]}{path}", timeout=1).status_code == 200
            if name.endswith("worker"):
                written = (self.logs / f"{name}.log").read_bytes()[self.log_offsets.get(name, 0) :]
                return b" ready." in written.rsplit(b"Connected to", 1)[-1]
            return True  # relays have nothing to probe

        try:
            wait_until(lambda: ready() or None, timeout=60, what=f"{name} to be ready")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{(self.logs / (name + '.log')).read_text()[-3000:]}") from None

    # the system's own endpoints
    def url(self, service: str, path: str) -> str:
        port = {"users": self.config.users_port, "profile": self.config.profile_port, "emails": self.config.emails_port}
        port["gateway"] = self.config.gateway_port
        return f"http://127.0.0.1:{port[service]}{path}"

    def mail(self) -> list[dict[str, object]]:
        response = httpx.get(f"http://127.0.0.1:{self.config.mail_http_port}/api/v2/messages", timeout=5)
        return response.json()["items"]

    def mail_to(self, address: str) -> list[dict[str, object]]:
        return [m for m in self.mail() if address in m["Raw"]["To"]]  # type: ignore[index,operator]


def command_line(stack: Stack, name: str) -> list[str]:
    return shlex.split(stack.commands[name])
