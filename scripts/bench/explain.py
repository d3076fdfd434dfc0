"""EXPLAIN (ANALYZE, BUFFERS) of every query the running system makes, captured with auto_explain.

The bench turns PostgreSQL's auto_explain on for the three databases, starts the system, drives
each hot path once (registration, the reads by id, login, me, a subscription, a mail, an account
deletion; the relays' outbox scans, the watchdog's stale-saga scan and the purge scan run on
their own), and reads the plans PostgreSQL logged: the real queries with their real parameters,
whatever code made them. One plan per query shape (literals taken out), the slowest. A plan that
reads a table of more than a few thousand rows without an index is flagged.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2

SETTINGS = {
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_timing": "on",
    "auto_explain.log_format": "text",
}
PREFIX = "%m [%p] db=%d "
BIG_TABLE_ROWS = 5000
_ENTRY = re.compile(r"^\S+ \S+ \S+ \[\d+\] db=(\w*) LOG:  duration: ([\d.]+) ms  plan:\n(.*?)(?=^\S+ \S+ \S+ \[\d+\] |\Z)", re.M | re.S)
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


@dataclass
class Plan:
    database: str
    query: str
    plan: str
    duration_ms: float
    executions: int = 1

    @property
    def shape(self) -> str:
        return " ".join(_LITERAL.sub("?", self.query).split())


def _superuser(stack, service: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(
        stack.config.database_url(service).replace("postgresql+psycopg2://", "postgresql://").replace(f"{service}_svc@", "app@")
    )
    conn.autocommit = True
    return conn


def switch(stack, on: bool) -> None:
    """auto_explain on (or off) for connections made from now on; the log lines name the database."""
    for service in ("users", "profile", "emails"):
        conn = _superuser(stack, service)
        with conn.cursor() as cur:
            for name, value in SETTINGS.items():
                if on:
                    cur.execute(f"ALTER DATABASE {service} SET {name} = %s", (value,))
                else:
                    cur.execute(f"ALTER DATABASE {service} RESET {name}")
            if service == "users":
                if on:
                    cur.execute("ALTER SYSTEM SET log_line_prefix = %s", (PREFIX,))
                else:
                    cur.execute("ALTER SYSTEM RESET log_line_prefix")
                cur.execute("SELECT pg_reload_conf()")
        conn.close()
    time.sleep(0.5)  # the reload reaches every backend


def log_path(stack) -> Path:
    return stack.config.postgres_dir / "postgres.log"  # under /var/tmp when run as root (devstack.py)


def drive(stack, seeded_users: int) -> None:
    """Each hot path once, against a seeded user and a new one; then the relays' passes."""
    http = httpx.Client(timeout=60)
    seeded = max(1, seeded_users - 1 if seeded_users % 50 == 0 else seeded_users)  # every 50th deleted its account
    new = http.post(
        stack.url("users", "/v1/register/"),
        json={"email": f"explain-{time.time_ns()}@example.com", "first_name": "Ex", "last_name": "Plain", "password": "x"},
    )
    new.raise_for_status()
    user = new.json()
    for user_id in (seeded, user["id"]):
        http.get(stack.url("users", f"/v1/users/{user_id}"))
        http.get(stack.url("profile", f"/v1/profile/{user_id}"))
        http.get(stack.url("profile", f"/v1/subscription/{user_id}"))
    http.get(stack.url("users", f"/v1/register/{user['saga']['id']}"))
    http.post(stack.url("profile", "/v1/subscription/add/"), json={"user_id": user["id"], "plan": "basic"})
    sent = http.post(stack.url("emails", "/v1/emails/send/"), json={"user_id": seeded, "subject": "Explain", "body": "Hi"})
    if sent.status_code == 202:
        http.get(stack.url("emails", sent.headers["Location"]))
    for email in (f"seed-{seeded}@example.com", user["email"]):
        login = http.post(stack.url("users", "/v1/auth/login"), json={"email": email, "password": "x"})
        if login.status_code == 200:
            token = login.json()["access_token"]
            http.get(stack.url("users", "/v1/users/me"), headers={"Authorization": f"Bearer {token}"})
    # The new user deletes the account: the deletion saga's steps, the goodbye mail.
    token = http.post(stack.url("users", "/v1/auth/login"), json={"email": user["email"], "password": "x"}).json()["access_token"]
    http.delete(stack.url("users", "/v1/users/me"), headers={"Authorization": f"Bearer {token}"})
    time.sleep(5)  # the relays' passes: outbox scans, the watchdog and the purge scan, a few times each
    http.close()


def collect(path: Path, offset: int) -> list[Plan]:
    text = path.read_bytes()[offset:].decode(errors="replace")
    plans: dict[tuple[str, str], Plan] = {}
    for database, duration, body in _ENTRY.findall(text):
        lines = [line.removeprefix("\t") for line in body.rstrip("\n").split("\n")]
        # The query text comes first (over several lines, maybe), then the plan: every node has costs.
        start = next((i for i, line in enumerate(lines) if "  (cost=" in line), len(lines))
        query = "\n".join(lines[:start]).removeprefix("Query Text: ").strip()
        lines = lines[start:]
        plan = Plan(database, query, "\n".join(lines), float(duration))
        key = (database, plan.shape)
        if key in plans:
            plans[key].executions += 1
            if plan.duration_ms > plans[key].duration_ms:
                plan.executions = plans[key].executions
                plans[key] = plan
        else:
            plans[key] = plan
    # Not the system's own queries: the driver's catalogue look-ups, and this module's reload.
    noise = re.compile(r"^select (current_schema|pg_catalog\.version)\(\)|pg_type t JOIN pg_namespace|pg_reload_conf", re.I)
    return sorted((p for p in plans.values() if not noise.search(p.query)), key=lambda p: (p.database, p.shape))


def table_rows(stack) -> dict[str, int]:
    rows: dict[str, int] = {}
    for service in ("users", "profile", "emails"):
        conn = _superuser(stack, service)
        with conn.cursor() as cur:
            cur.execute("SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
            rows.update({f"{service}.{name}": count for name, count in cur.fetchall()})
        conn.close()
    return rows


def unindexed(plans: list[Plan], rows: dict[str, int]) -> list[tuple[Plan, str]]:
    """Plans with a sequential scan of a big table: the hot paths must not have any."""
    found = []
    for plan in plans:
        for table in re.findall(r"Seq Scan on (\w+)", plan.plan):
            if rows.get(f"{plan.database}.{table}", 0) > BIG_TABLE_ROWS:
                found.append((plan, table))
    return found


def capture(stack, seeded_users: int) -> tuple[list[Plan], list[tuple[Plan, str]]]:
    """Restart the system with auto_explain on, drive it, and return the plans (and the unindexed)."""
    stack.stop_all()
    switch(stack, True)
    offset = log_path(stack).stat().st_size
    try:
        stack.start_all()
        drive(stack, seeded_users)
    finally:
        stack.stop_all()
        switch(stack, False)
    plans = collect(log_path(stack), offset)
    return plans, unindexed(plans, table_rows(stack))


def render(plans: list[Plan], flagged: list[tuple[Plan, str]], users: int) -> str:
    lines = [
        f"EXPLAIN (ANALYZE, BUFFERS) of every query shape the system ran at {users} seeded users",
        "(auto_explain; scripts/bench/explain.py; the slowest execution of each shape).",
        "",
        f"Sequential scans of tables over {BIG_TABLE_ROWS} rows: "
        + (", ".join(f"{p.database}.{table}" for p, table in flagged) if flagged else "none"),
        "",
    ]
    for plan in plans:
        lines += [
            "=" * 100,
            f"[{plan.database}] {plan.executions} execution(s), slowest {plan.duration_ms:.3f} ms",
            plan.query,
            "-" * 100,
            plan.plan,
            "",
        ]
    return "\n".join(lines)
