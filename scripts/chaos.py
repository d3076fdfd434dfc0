#!/usr/bin/env python3
"""Chaos: faults injected while registrations flow; afterwards, nothing may be lost.

    make chaos                 # or: .venv/bin/python scripts/chaos.py [--seconds 20] [--out docs/chaos.md]

For each fault in turn — SIGKILL each kind of worker and start it again, restart Redis, restart
PostgreSQL, SMTP refusing connections for 30 s, an SMTP server that accepts connections and never
answers for 60 s, one that answers every command slowly for 60 s — registrations are sent for a
bounded time by a few concurrent clients while the fault happens. After recovery (a bounded wait)
every registration that got a 2xx is checked: its saga ended completed (welcome mail sent) or
failed (compensated); exactly one welcome mail per completed user; no profile or address left by
a failed registration; no 5xx other than 503. The saga p50 (accepted to pivot) of the
registrations accepted during each fault is measured too; during an SMTP fault it must stay below
1 s (mail delivery has its own queue and workers, so the saga steps do not wait behind it). A table
of the results is printed and written. Runs on the test stack (tests/stack.py), which it starts and stops.

    .venv/bin/python scripts/chaos.py --only smtp    # only the faults whose name contains "smtp"
"""

import argparse
import collections
import contextlib
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import devstack  # noqa: E402
from tests.stack import UNTHROTTLED, Stack, wait_until  # noqa: E402
from tests.utils.smtp import FakeSMTP, free_port  # noqa: E402

CLIENTS = 3
# While SMTP misbehaves, sagas must keep their pace: delivery waits on its own queue and workers.
SMTP_FAULT_SAGA_P50_BOUND_MS = 1000
# Below the SMTP timeout the test stack gives the emails worker (3 s), so every reply arrives, slowly.
SLOW_REPLY_SECONDS = 2.0


def smtp_replaced(stack: Stack, seconds: float, *, slow: bool) -> Callable[[], None]:
    """The mail sink's SMTP port taken over for ``seconds``: by a server that never answers, or
    (``slow``) by one that answers every command slowly in front of the sink moved to another port."""

    def fault() -> None:
        stack.stop("mail")
        smtp_port = stack.env["SMTP_PORT"]
        sink_port = free_port() if slow else None
        if sink_port is not None:  # the sink keeps receiving, on a port only the slow server knows
            stack.env["SMTP_PORT"] = str(sink_port)
            try:
                stack.start("mail")
            finally:
                stack.env["SMTP_PORT"] = smtp_port
        server = FakeSMTP(int(smtp_port), forward_to=sink_port, delay=SLOW_REPLY_SECONDS)
        try:
            time.sleep(seconds)
        finally:
            server.close()
            stack.stop("mail")
            stack.start("mail")

    return fault


@dataclass
class Outcome:
    fault: str
    attempted: int = 0
    accepted: list[tuple[str, int, str]] = field(default_factory=list, repr=False)  # (saga id, user id, email)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    completed: int = 0
    compensated: int = 0
    lost: int = 0
    duplicate_mails: int = 0
    leftovers: int = 0
    server_errors: int = 0  # 5xx other than 503
    transport_errors: int = 0
    saga_p50_during_ms: float | None = None  # accepted to pivot, for the sagas started during the fault


def load(stack: Stack, outcome: Outcome, stop: threading.Event) -> None:
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                email = f"chaos-{uuid.uuid4().hex[:12]}@example.com"
                body = {"email": email, "first_name": "Chaos", "last_name": "Monkey", "password": "x"}
                with lock:
                    outcome.attempted += 1
                try:
                    response = http.post(stack.url("users", "/v1/register/"), json=body)
                except httpx.HTTPError:
                    with lock:
                        outcome.transport_errors += 1
                    time.sleep(0.2)
                    continue
                with lock:
                    outcome.statuses[response.status_code] += 1
                    if response.status_code in (201, 202):
                        outcome.accepted.append((response.json()["saga"]["id"], response.json()["id"], email))
                    elif response.status_code >= 500 and response.status_code != 503:
                        outcome.server_errors += 1
                if response.status_code == 503:
                    time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def settle(stack: Stack, outcome: Outcome, timeout: float) -> None:
    """Wait (bounded) for every accepted saga to finish, then count what happened to each."""
    ids = [saga_id for saga_id, _, _ in outcome.accepted]

    def unfinished() -> list[str]:
        if not ids:
            return []
        rows = stack.query("users", "SELECT id::text FROM saga WHERE finished_at IS NULL AND id::text = ANY(%s)", ids)
        return [row[0] for row in rows]  # type: ignore[misc]

    with contextlib.suppress(TimeoutError):  # what is still unfinished then counts as lost
        wait_until(lambda: not unfinished(), timeout=timeout, interval=1, what="every accepted saga to finish")
    statuses = dict(stack.query("users", "SELECT id::text, status FROM saga WHERE id::text = ANY(%s)", ids)) if ids else {}
    still_running = set(unfinished())
    mails = collections.Counter(m["Raw"]["To"][0] for m in stack.mail() if m["Content"]["Headers"].get("Subject") == ["Welcome aboard"])
    for saga_id, user_id, email in outcome.accepted:
        status = statuses.get(saga_id)
        if status is None or saga_id in still_running:
            outcome.lost += 1
        elif status == "completed":
            outcome.completed += 1
            outcome.duplicate_mails += max(0, mails[email] - 1)
            outcome.lost += mails[email] == 0
        elif status == "failed":
            outcome.compensated += 1
            left = stack.query("profile", "SELECT 1 FROM profile WHERE user_id = %s", user_id)
            left += stack.query("emails", "SELECT 1 FROM recipient WHERE user_id = %s", user_id)
            outcome.leftovers += len(left)
        else:
            outcome.lost += 1


def db_now(stack: Stack) -> float:
    return float(stack.query("users", "SELECT extract(epoch FROM now())")[0][0])  # type: ignore[arg-type]


def saga_p50_during(stack: Stack, outcome: Outcome, start: float, end: float) -> float | None:
    """Median accepted-to-pivot time (ms) of this run's sagas accepted between start and end."""
    ids = [saga_id for saga_id, _, _ in outcome.accepted]
    if not ids:
        return None
    rows = stack.query(
        "users",
        "SELECT (extract(epoch FROM p.updated_at) - extract(epoch FROM s.created_at)) * 1000 FROM saga s "
        "JOIN saga_step p ON p.saga_id = s.id AND p.step = 'complete_registration' "
        "WHERE s.status = 'completed' AND s.id::text = ANY(%s) AND s.created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
        ids,
        start,
        end,
    )
    return statistics.median(float(row[0]) for row in rows) if rows else None  # type: ignore[arg-type]


def held_up(outcome: Outcome) -> bool:
    """An SMTP fault that slowed the sagas (or let none complete while it lasted)."""
    if "SMTP" not in outcome.fault:
        return False
    return outcome.saga_p50_during_ms is None or outcome.saga_p50_during_ms >= SMTP_FAULT_SAGA_P50_BOUND_MS


def restart(stop: Callable[[], None], start: Callable[[], None], down_for: float) -> Callable[[], None]:
    def fault() -> None:
        stop()
        time.sleep(down_for)
        start()

    return fault


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="how long registrations flow per fault")
    parser.add_argument("--settle", type=float, default=120, help="bound on the wait for sagas to finish")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "chaos.md")
    parser.add_argument("--only", default="", help="run only the faults whose name contains this (case-insensitive)")
    args = parser.parse_args()

    stack = Stack()
    stack.env.update(UNTHROTTLED)
    stack.start_infra()
    stack.reset_data()
    stack.start_all()

    def kill_and_restart(name: str) -> Callable[[], None]:
        return restart(lambda: stack.kill(name), lambda: stack.start(name), 2)

    faults: dict[str, Callable[[], None]] = {
        "SIGKILL users worker": kill_and_restart("users-worker"),
        "SIGKILL profile worker": kill_and_restart("profile-worker"),
        "SIGKILL emails worker": kill_and_restart("emails-worker"),
        "SIGKILL emails mail worker": kill_and_restart("emails-mail-worker"),
        "restart Redis": restart(stack.stop_redis, stack.start_redis, 3),
        "restart PostgreSQL": restart(lambda: devstack.stop_postgres(stack.config), lambda: devstack.start_postgres(stack.config), 3),
        "SMTP refuses connections 30 s": restart(lambda: stack.stop("mail"), lambda: stack.start("mail"), 30),
        "SMTP accepts connections, never answers 60 s": smtp_replaced(stack, 60, slow=False),
        f"SMTP answers every command after {SLOW_REPLY_SECONDS:g} s, 60 s": smtp_replaced(stack, 60, slow=True),
    }
    faults = {name: fault for name, fault in faults.items() if args.only.lower() in name.lower()}
    outcomes = []
    try:
        for name, fault in faults.items():
            print(f"--- {name}", flush=True)
            outcome = Outcome(name)
            stop = threading.Event()
            loader = threading.Thread(target=load, args=(stack, outcome, stop))
            loader.start()
            started = time.monotonic()
            time.sleep(args.seconds / 4)  # registrations are flowing when the fault hits
            fault_start = db_now(stack)
            fault()
            fault_end = db_now(stack)
            time.sleep(max(args.seconds / 4, args.seconds - (time.monotonic() - started)))  # and after it
            stop.set()
            loader.join()
            settle(stack, outcome, args.settle)
            outcome.saga_p50_during_ms = saga_p50_during(stack, outcome, fault_start, fault_end)
            outcomes.append(outcome)
            print(f"    {outcome}", flush=True)
    finally:
        stack.stop_all()

    header = (
        "| fault | attempted | accepted | completed | compensated | lost | duplicate mails | leftovers | 5xx (not 503) | "
        "saga p50 during the fault (ms) | HTTP statuses |"
    )
    rows = [header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(o.statuses.items()))
        rows.append(
            f"| {o.fault} | {o.attempted} | {len(o.accepted)} | {o.completed} | {o.compensated} | {o.lost} | "
            f"{o.duplicate_mails} | {o.leftovers} | {o.server_errors} | "
            f"{'-' if o.saga_p50_during_ms is None else f'{o.saga_p50_during_ms:.0f}'} | {codes} |"
        )
    table = "\n".join(rows)
    print(table)
    args.out.write_text(
        "# Chaos run\n\n"
        f"`scripts/chaos.py --seconds {args.seconds:g}` on {time.strftime('%Y-%m-%d')}: {CLIENTS} clients registering "
        "continuously while each fault happens; then a bounded wait for every accepted saga.\n\n"
        f"{table}\n\n"
        "*lost*: accepted (2xx) but not finished, or completed without its welcome mail. "
        "*leftovers*: a profile or address of a failed registration. *saga p50 during the fault*: accepted to pivot "
        "(complete_registration), for the registrations accepted while the fault lasted.\n"
    )
    bad = [o.fault for o in outcomes if o.lost or o.duplicate_mails or o.leftovers or o.server_errors or held_up(o)]
    print("chaos:", "FAILED for " + ", ".join(bad) if bad else "nothing lost", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
