#!/usr/bin/env python3
"""Benchmarks: figures beside a ceiling measured in the same run, written to docs/benchmarks.md.

    make bench                 # or: .venv/bin/python scripts/bench/bench.py [--seconds 20] [--sizes 0,100000,1000000]

Starts the system as the README's no-Docker run does (the Procfile's processes, on the test
stack's ports, failpoints off, default settings), drives it with wrk (Lua scripts beside this
file), reads saga timings from the users database, and stops what it started. The same
benchmarks run on an empty database and again on databases seeded with the history of 100,000
and 1,000,000 users (seed.py, bulk-loaded), with one relay pass, one watchdog scan, one purge
scan and one emails relay pass timed at each size; at the largest size every query the system
makes is EXPLAINed (explain.py) into benchmarks-explain.txt. Plots: latency against load
(benchmarks-latency.png), each figure against the data's size (benchmarks-growth.png).
"""

import argparse
import json
import math
import multiprocessing
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.stack import UNTHROTTLED, Stack, wait_until  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import explain  # noqa: E402
import seed  # noqa: E402

LUA = Path(__file__).resolve().parent
PASSWORD = "x"  # noqa: S105  # what the contract registers with


def wrk(url: str, script: str, *, connections: int, seconds: float, threads: int = 2, env: dict[str, str] | None = None) -> dict:
    command = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
        "--timeout",
        "30s",
        "-s",
        str(LUA / script),
        url,
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "BENCH_LUA_DIR": str(LUA), **(env or {})}
    ).stdout
    figures = json.loads(re.search(r"^WRK_JSON (.*)$", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    figures["rps"] = figures["requests"] / figures["duration_s"]
    figures["command"] = " ".join([*(f"{name}={value}" for name, value in (env or {}).items() if name.startswith("BENCH_")), *command])
    return figures


def _hash_for(seconds: float, params: dict[str, int]) -> int:
    from argon2 import PasswordHasher

    hasher = PasswordHasher(**params)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        hasher.hash(PASSWORD)
        done += 1
    return done


def argon2_ceiling(params: dict[str, int], seconds: float) -> float:
    """Argon2id hashes per second with the service's parameters, on every core."""
    cores = os.cpu_count() or 1
    with multiprocessing.Pool(cores) as pool:
        counts = pool.starmap(_hash_for, [(seconds, params)] * cores)
    return sum(counts) / seconds


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def db_now(stack: Stack) -> float:
    return float(stack.query("users", "SELECT extract(epoch FROM now())")[0][0])  # type: ignore[arg-type]


def saga_figures(stack: Stack, run: str, start: float, end: float) -> dict:
    """For this run's registrations: completions inside the window and accept-to-completed latency."""
    rows = stack.query(
        "users",
        "SELECT s.status, extract(epoch FROM s.created_at), extract(epoch FROM p.updated_at) "
        "FROM saga s JOIN user_account u ON u.id = s.user_id "
        "JOIN saga_step p ON p.saga_id = s.id AND p.step = 'complete_registration' "
        "WHERE u.email LIKE %s",
        f"bench-{run}-%",
    )
    completed = [(float(c), float(p)) for status, c, p in rows if status == "completed"]  # type: ignore[arg-type]
    latencies = [(p - c) * 1000 for c, p in completed]
    in_window = sum(1 for _, p in completed if start <= p <= end)
    return {
        "accepted": len(rows),
        "completed": len(completed),
        "completed_per_s": in_window / (end - start),
        "saga_p50_ms": percentile(latencies, 50),
        "saga_p95_ms": percentile(latencies, 95),
        "saga_p99_ms": percentile(latencies, 99),
    }


def registration_run(stack: Stack, connections: int, seconds: float, delay_ms: float = 0) -> dict:
    run = uuid.uuid4().hex[:8]
    start = db_now(stack)
    figures = wrk(
        stack.url("users", "/v1/register/"),
        "register.lua",
        connections=connections,
        seconds=seconds,
        env={"BENCH_RUN": run, "WRK_DELAY_MS": str(int(delay_ms))},
    )
    end = db_now(stack)
    # Let the sagas still in flight finish before reading their latencies (an indexed scan).
    wait_until(
        lambda: not stack.query("users", "SELECT 1 FROM saga WHERE finished_at IS NULL LIMIT 1"),
        timeout=120,
        interval=0.5,
        what="the run's sagas to finish",
    )
    return {"connections": connections, "delay_ms": delay_ms, **figures, **saga_figures(stack, run, start, end)}


def mail_run(stack: Stack, seconds: float) -> dict:
    before = stack.query("emails", "SELECT coalesce(max(id), 0) FROM message")[0][0]
    figures = wrk(stack.url("emails", "/v1/emails/send/"), "send.lua", connections=4, seconds=seconds)
    wait_until(
        lambda: not stack.query("emails", "SELECT 1 FROM message WHERE id > %s AND status = 'queued' LIMIT 1", before),
        timeout=300,
        interval=0.5,
        what="every message to be delivered",
    )
    [(count, first, last)] = stack.query(
        "emails",
        "SELECT count(*), extract(epoch FROM min(created_at)), extract(epoch FROM max(sent_at)) FROM message WHERE id > %s",
        before,
    )
    delivered = int(count)  # type: ignore[call-overload]
    return {**figures, "delivered": delivered, "delivered_per_s": delivered / (float(last) - float(first))}  # type: ignore[arg-type]


# The seeded history is older than every retention. The benchmarks keep it (a retention longer
# than the history) so that they measure the same data at every step; one more sustained run
# then measures registration while the relays prune it with their default retention.
RETENTION_SETTINGS = (
    "USERS_OUTBOX_RETENTION_SECONDS",
    "PROFILE_LEDGER_RETENTION_SECONDS",
    "EMAILS_LEDGER_RETENTION_SECONDS",
    "EMAILS_MAIL_RETENTION_SECONDS",
)
KEEP_HISTORY = dict.fromkeys(RETENTION_SETTINGS, str((seed.HISTORY_DAYS + 30) * 86400))
PRUNING_PROCESSES = ("users-relay", "profile-retention", "emails-relay")
PRUNABLE = {
    "users": "SELECT count(*) FROM outbox_message WHERE published_at < now() - interval '7 days'",
    "profile": "SELECT count(*) FROM saga_step_log WHERE updated_at < now() - interval '30 days'",
    "emails": "SELECT (SELECT count(*) FROM saga_step_log WHERE updated_at < now() - interval '30 days') "
    "+ (SELECT count(*) FROM message WHERE status IN ('sent', 'failed') AND created_at < now() - interval '30 days')",
}


def prunable_rows(stack: Stack) -> int:
    return sum(int(stack.query(service, sql)[0][0]) for service, sql in PRUNABLE.items())  # type: ignore[call-overload]


def restart_pruning_processes(stack: Stack, *, prune: bool) -> None:
    """The relays and profile-retention started again, keeping the history or pruning it (their default retention)."""
    if prune:
        for name in RETENTION_SETTINGS:
            stack.env.pop(name)
    try:
        for name in PRUNING_PROCESSES:
            stack.stop(name)
            stack.start(name)
    finally:
        stack.env.update(KEEP_HISTORY)


def pruning_run(stack: Stack, seconds: float) -> dict:
    """Sustained registration (8 connections) while the relays and profile-retention prune the seeded history."""
    before = prunable_rows(stack)
    restart_pruning_processes(stack, prune=True)
    wait_until(lambda: prunable_rows(stack) < before, timeout=60, interval=0.5, what="the pruning to begin")
    run = registration_run(stack, 8, seconds)
    run["rows_pruned"] = before - prunable_rows(stack)
    run["prunable_before"] = before
    return run


def plot(levels: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    rates = [level["completed_per_s"] for level in levels]
    for key, label in (("p50_ms", "POST p50"), ("p95_ms", "POST p95"), ("saga_p50_ms", "saga p50"), ("saga_p95_ms", "saga p95")):
        axis.plot(rates, [level[key] for level in levels], marker="o", label=label)
    for level, rate in zip(levels, rates, strict=True):
        axis.annotate(f"c={level['connections']}", (rate, level["p95_ms"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axis.set_xlabel("completed registrations per second")
    axis.set_ylabel("latency (ms)")
    axis.set_title("Registration latency against load (2 cores, wrk closed loop)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)


# Reads are measured at each of these loads; each run's figures under its key ("reads": the 16 connections' run).
READ_LOADS = ((16, "reads"), (32, "reads_32"))


def reads_run(stack: Stack, connections: int, seconds: float, max_id: int) -> dict:
    """The constant endpoint, then each read by id (direct and through the gateway), at one load."""
    constant = wrk(stack.url("users", "/healthz"), "get.lua", connections=connections, seconds=seconds)
    reads = {"constant (users /healthz)": {"direct": constant}}
    for label, service, path in (
        ("GET /v1/users/{id}", "users", "/v1/users/{id}"),
        ("GET /v1/profile/{id}", "profile", "/v1/profile/{id}"),
    ):
        env = {"BENCH_PATH": path, "BENCH_MAX_ID": str(max_id)}
        reads[label] = {
            where: wrk(stack.url(where, "/"), "get_ids.lua", connections=connections, seconds=seconds, env=env)
            for where in (service, "gateway")
        }
        reads[label]["direct"] = reads[label].pop(service)
    return reads


def reads_rounds(stack: Stack, connections: int, seconds: float, max_id: int) -> dict:
    """``reads_run`` in READ_ROUNDS rounds; each figure is the median round's run of that endpoint.

    A share of the constant endpoint divides two runs made at different moments, and this
    machine's speed drifts by several percent from one minute to the next.
    """
    rounds = [reads_run(stack, connections, seconds, max_id) for _ in range(READ_ROUNDS)]
    return {
        label: {where: sorted((run[label][where] for run in rounds), key=lambda f: f["rps"])[READ_ROUNDS // 2] for where in runs}
        for label, runs in rounds[0].items()
    }


READ_ROUNDS = 3
HALF_RATE_RUNS = 3
SUSTAINED_ROUNDS = 3


def measure(stack: Stack, seconds: float, size: int) -> dict:
    """Every benchmark on databases holding `size` users of history (seed.py; 0: empty)."""
    stack.stop_all()
    stack.reset_data()
    figures: dict = {"users": size}
    if size:
        print(f"seed: {size} users ...", flush=True)
        started = time.monotonic()
        figures["seed_s_per_database"] = seed.seed(stack.config, size)
        figures["seed_s"] = time.monotonic() - started
    stack.start_all()
    print(f"--- {size} users of history", flush=True)
    from users_svc.config import Settings

    defaults = Settings(database_url="-", broker_url="-")
    params = {
        "time_cost": defaults.argon2_time_cost,
        "memory_cost": defaults.argon2_memory_cost_kib,
        "parallelism": defaults.argon2_parallelism,
    }
    figures["argon2_params"] = params

    print("registration: latency against load ...", flush=True)
    levels = [registration_run(stack, c, seconds / 2) for c in (1, 2, 4, 8)]
    figures["levels"] = levels
    # The ceiling right before each sustained run, and the median round's ratio: this machine's
    # hash rate moved by up to 12% from one minute to the next.
    print(f"registration: sustained, {SUSTAINED_ROUNDS} rounds of the argon2 ceiling then 8 connections ...", flush=True)
    rounds = []
    for _ in range(SUSTAINED_ROUNDS):
        ceiling = argon2_ceiling(params, seconds / 2)
        rounds.append({**registration_run(stack, 8, seconds), "argon2_per_s": ceiling})
    rounds.sort(key=lambda run: run["completed_per_s"] / run["argon2_per_s"])
    sustained = {**rounds[len(rounds) // 2], "rounds": [(run["argon2_per_s"], run["completed_per_s"]) for run in rounds]}
    figures["sustained"] = sustained
    figures["argon2_per_s"] = sustained["argon2_per_s"]
    # (On a machine too busy to complete any registration inside the window, the best level's rate.)
    half = (sustained["completed_per_s"] or max(level["completed_per_s"] for level in levels) or 1.0) / 2
    # Two paced connections offering about half the sustained rate.
    delay = max(0.0, 1000 * 2 / half - levels[0]["p50_ms"])
    print(f"registration: at half the sustained rate (delay {delay:.0f} ms), {HALF_RATE_RUNS} runs ...", flush=True)
    # The median run: one run's p50 (about 60 sagas) moved by 10-20% between runs on this machine.
    runs = sorted((registration_run(stack, 2, seconds, delay_ms=delay) for _ in range(HALF_RATE_RUNS)), key=lambda run: run["saga_p50_ms"])
    figures["half"] = {**runs[len(runs) // 2], "runs_saga_p50_ms": [run["saga_p50_ms"] for run in runs]}

    # Reads at random ids over every user there is (the seeded and those registered above).
    max_id = int(stack.query("users", "SELECT max(id) FROM user_account")[0][0])  # type: ignore[call-overload]
    for connections, key in READ_LOADS:
        print(f"reads ({connections} connections) ...", flush=True)
        figures[key] = reads_rounds(stack, connections, seconds / 4, max_id)

    print("mail ...", flush=True)
    figures["mail"] = mail_run(stack, seconds / 4)
    print("relay and watchdog scans ...", flush=True)
    figures["scans"] = scan_timings(stack)
    if size:
        print("registration: sustained while the relays prune the history ...", flush=True)
        figures["while_pruning"] = pruning_run(stack, seconds)
    return figures


def measure_pruning(stack: Stack, seconds: float, size: int, rounds: int = 2) -> list[dict]:
    """Only the sustained registration rate on `size` users of history, without and with the pruning, alternately."""
    stack.stop_all()
    stack.reset_data()
    seed.seed(stack.config, size)
    stack.start_all()
    print(f"--- {size} users of history: sustained without, then while pruning; {rounds} rounds (the machine's load drifts)", flush=True)
    batch_ms = batch_timings(stack)
    measured = []
    for _ in range(rounds):
        restart_pruning_processes(stack, prune=False)
        measured.append({"users": size, "sustained": registration_run(stack, 8, seconds), "while_pruning": pruning_run(stack, seconds)})
        print(json.dumps(measured[-1], default=str), flush=True)
    measured[-1]["batch_ms"] = batch_ms
    return measured


def batch_timings(stack: Stack, repeat: int = 10) -> dict[str, float]:
    """Median milliseconds of one batch of each table's pruning (default retention), on the seeded history."""
    # The services' modules read their settings on import: the stack's, with the default retention.
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith(("USERS_", "PROFILE_", "EMAILS_")) and k not in KEEP_HISTORY})
    from emails_svc import relay as emails_relay
    from emails_svc.config import Settings as EmailsSettings
    from profile_svc import retention as profile_retention
    from profile_svc.config import Settings as ProfileSettings
    from saga import PRUNE_BATCH, make_sessionmaker, prune_batch
    from users_svc import relay as users_relay
    from users_svc.config import Settings as UsersSettings

    retentions = {
        "users": users_relay.retentions(UsersSettings()),  # type: ignore[call-arg]  # from the environment
        "profile": profile_retention.retentions(ProfileSettings()),  # type: ignore[call-arg]
        "emails": emails_relay.retentions(EmailsSettings()),  # type: ignore[call-arg]
    }
    timings = {}
    for service, kinds in retentions.items():
        sessions = make_sessionmaker(stack.config.database_url(service))
        for retention in kinds:
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                with sessions.begin() as session:
                    prune_batch(session, retention, PRUNE_BATCH)
                samples.append((time.perf_counter() - started) * 1000)
            timings[f"{service}.{retention.name}"] = percentile(samples, 50)
    return timings


def scan_timings(stack: Stack, repeat: int = 20) -> dict[str, float]:
    """Median milliseconds of one pass of each periodic scan, run here on an idle system."""
    from emails_svc.outbox import publish_pending
    from saga import create_celery_app, make_sessionmaker
    from users_svc.outbox import publish_outbox
    from users_svc.watchdog import redrive_stale, start_due_purges

    users = make_sessionmaker(stack.config.database_url("users"))
    emails = make_sessionmaker(stack.config.database_url("emails"))
    app = create_celery_app("bench", stack.config.broker_url)
    scans = {
        "relay pass (users outbox)": lambda: publish_outbox(users, app),
        "watchdog scan (stale sagas)": lambda: redrive_stale(users, 30.0),
        "purge scan (restore period over)": lambda: start_due_purges(users),
        "emails relay pass (mail outbox)": lambda: publish_pending(emails, app),
    }
    timings = {}
    for label, scan in scans.items():
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            scan()
            samples.append((time.perf_counter() - started) * 1000)
        timings[label] = percentile(samples, 50)
    return timings


# The figures the growth plot and table follow, each as (label, how to read it from a run).
GROWTH = {
    "registrations/s (sustained)": lambda f: f["sustained"]["completed_per_s"],
    "saga p50 at half rate": lambda f: f["half"]["saga_p50_ms"],
    "GET /v1/users/{id} req/s": lambda f: f["reads"]["GET /v1/users/{id}"]["direct"]["rps"],
    "GET /v1/profile/{id} req/s": lambda f: f["reads"]["GET /v1/profile/{id}"]["direct"]["rps"],
    "relay pass ms": lambda f: f["scans"]["relay pass (users outbox)"],
    "watchdog scan ms": lambda f: f["scans"]["watchdog scan (stale sagas)"],
}


def plot_growth(growth: list[dict], path: Path) -> None:
    """Each figure relative to the empty database's, against the users of history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    labels = [f"{run['users']:,}" for run in growth]
    for label, read in GROWTH.items():
        base = read(growth[0])
        axis.plot(labels, [read(run) / base if base else float("nan") for run in growth], marker="o", label=label)
    axis.axhspan(0.8, 1.2, color="green", alpha=0.08, label="within 20%")
    axis.set_xlabel("users of seeded history")
    axis.set_ylabel(f"relative to {labels[0]} users")
    axis.set_title("Cost as the data grows (2 cores)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="length of each measured run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--sizes", default="0,100000,1000000", help="users of seeded history to run the benchmarks at, the first one usually 0"
    )
    parser.add_argument(
        "--pruning-only",
        action="store_true",
        help="per size: sustained registration without, then with the pruning; print, write nothing",
    )
    args = parser.parse_args()
    seconds = args.seconds
    sizes = [int(size) for size in args.sizes.split(",")]

    stack = Stack()
    stack.env.update(UNTHROTTLED)
    stack.env.update(KEEP_HISTORY)
    # As a user runs it: no failpoints, the services' default settings.
    for name in ("SAGA_FAILPOINTS", "USERS_SAGA_STALE_AFTER_SECONDS", "USERS_RELAY_INTERVAL_SECONDS", "EMAILS_RETRY_BACKOFF_MAX_SECONDS"):
        stack.env.pop(name, None)
    # Except the send limits: the mail run measures delivery, from one address to one user.
    stack.env.update({"EMAILS_SEND_RATE_PER_ADDRESS": "", "EMAILS_SEND_RATE_PER_RECIPIENT": ""})
    stack.start_infra()
    if args.pruning_only:
        try:
            for size in sizes:
                print(render_pruning(measure_pruning(stack, seconds, size)), flush=True)
        finally:
            stack.stop_all()
        return 0
    results: dict = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "seconds": seconds, "growth": []}
    explain_text = None
    try:
        for size in sizes:
            figures = measure(stack, seconds, size)
            if not results.get("levels"):  # the empty database's run: the main tables
                results.update(figures)
            results["growth"].append(figures)
        if sizes[-1] > 0:
            print(f"explain: every query at {sizes[-1]} users ...", flush=True)
            plans, flagged = explain.capture(stack, sizes[-1])
            explain_text = explain.render(plans, flagged, sizes[-1])
            results["explain"] = {
                "users": sizes[-1],
                "queries": len(plans),
                "unindexed": [{"database": p.database, "table": table, "query": p.query} for p, table in flagged],
            }
    finally:
        stack.stop_all()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_name("benchmarks.json").write_text(json.dumps(results, indent=2, default=str))
    plot(results["levels"], args.out.with_name("benchmarks-latency.png"))
    plot_growth(results["growth"], args.out.with_name("benchmarks-growth.png"))
    if explain_text is not None:
        args.out.with_name("benchmarks-explain.txt").write_text(explain_text)
    write_results(args.out, render(results))
    print(args.out.read_text())
    return 0


BEGIN, END = "<!-- results: written by scripts/bench/bench.py -->", "<!-- end of results -->"


def write_results(path: Path, results: str) -> None:
    """Replace the results between the markers, keeping the hand-written analysis around them."""
    block = f"{BEGIN}\n{results}\n{END}"
    text = path.read_text() if path.exists() else ""
    if BEGIN not in text or END not in text:
        path.write_text(block + "\n")
        return
    path.write_text(text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :])


def render(r: dict) -> str:
    s, half, ceiling = r["sustained"], r["half"], r["argon2_per_s"]
    ratio = s["completed_per_s"] / ceiling
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` (`scripts/bench/bench.py --seconds {r['seconds']:g} "
        f"--sizes {','.join(str(run['users']) for run in r['growth'])}`) on {r['date']}, on this "
        f"{r['cores']}-core machine, with the load generator (wrk) on the same cores as the system. Every figure "
        "stands beside a ceiling measured in the same run. The system runs as `make run` runs it (the Procfile: "
        "one uvicorn process per API, two threads per worker), failpoints off, default settings.",
        "",
        "## Registration",
        "",
        f"Ceiling: Argon2id with the service's parameters ({r['argon2_params']}) on all cores, measured right before "
        f"each sustained run: **{ceiling:.1f} hashes/s** before the median round "
        f"({', '.join(f'{c:.1f}' for c, _ in s.get('rounds', [(ceiling, 0)]))} in the {len(s.get('rounds', [0]))} rounds).",
        "",
        "| load | completed registrations/s | POST p50 / p95 / p99 (ms) | accept-to-completed saga p50 / p95 / p99 (ms) |",
        "|---|---|---|---|",
    ]
    for label, run in [(f"{lvl['connections']} connections", lvl) for lvl in r["levels"]] + [
        (f"**sustained** (8 connections; the median of {len(s.get('rounds', [0]))} rounds by share of the ceiling)", s),
        (f"half the sustained rate (2 connections, {half['delay_ms']:.0f} ms pause; the median of {HALF_RATE_RUNS} runs)", half),
    ]:
        lines.append(
            f"| {label} | {run['completed_per_s']:.1f} | {run['p50_ms']:.0f} / {run['p95_ms']:.0f} / {run['p99_ms']:.0f} | "
            f"{run['saga_p50_ms']:.0f} / {run['saga_p95_ms']:.0f} / {run['saga_p99_ms']:.0f} |"
        )
    lines += [
        "",
        f"- Sustained completed registrations: **{s['completed_per_s']:.1f}/s = {ratio:.0%} of the hash ceiling** "
        f"(target ≥ 70%: {'met' if ratio >= 0.7 else 'missed'}); the rounds: "
        f"{', '.join(f'{rate:.1f}/s of {c:.1f} ({rate / c:.0%})' for c, rate in s.get('rounds', [(ceiling, s['completed_per_s'])]))}.",
        f"- Saga p50 at half the sustained rate: **{half['saga_p50_ms']:.0f} ms**, the median of "
        f"{', '.join(f'{p50:.0f}' for p50 in half.get('runs_saga_p50_ms', [half['saga_p50_ms']]))} ms "
        f"(target < 100 ms: {'met' if half['saga_p50_ms'] < 100 else 'missed'}).",
        "",
        "![latency against load](benchmarks-latency.png)",
        "",
    ]
    shares: list[float] = []
    gateway_costs: dict[int, float] = {}
    for connections, key in READ_LOADS:
        if key in r:
            lines += render_reads(r[key], connections)
            constant = r[key]["constant (users /healthz)"]["direct"]["rps"]
            shares += [runs["direct"]["rps"] / constant for runs in r[key].values() if "gateway" in runs]
            costs = [1 - runs["gateway"]["rps"] / runs["direct"]["rps"] for runs in r[key].values() if "gateway" in runs]
            gateway_costs[connections] = max(costs)
    worst_gateway = max(gateway_costs.values())
    lines += [
        f"- DB-backed reads at {min(shares):.0%} to {max(shares):.0%} of the constant endpoint "
        f"(target ≥ 50%: {'met' if min(shares) >= 0.5 else 'missed'}).",
        "- The gateway costs at most "
        + ", ".join(f"{cost:.0%} at {connections} connections" for connections, cost in gateway_costs.items())
        + f" (target ≤ 10% at 32 connections: {'met' if gateway_costs.get(32, worst_gateway) <= 0.10 else 'missed'}).",
        "",
        "## Mail",
        "",
        f"`POST /v1/emails/send/` with 4 connections for {r['seconds'] / 4:g} s: {r['mail']['requests']} messages accepted "
        f"({r['mail']['rps']:.0f}/s, p99 {r['mail']['p99_ms']:.0f} ms); delivered to the SMTP server at "
        f"**{r['mail']['delivered_per_s']:.1f} messages/s** from the first acceptance to the last delivery.",
        "",
        "## Commands",
        "",
        "Each run's exact wrk command line (the Lua scripts are in `scripts/bench/`):",
        "",
        "```",
        s["command"],
        half["command"] + f"   # WRK_DELAY_MS={half['delay_ms']:.0f}",
        *(runs["direct"]["command"] for _, key in READ_LOADS if key in r for runs in r[key].values()),
        r["mail"]["command"],
        "```",
        "",
        "Raw figures: `benchmarks.json`.",
        "",
    ]
    return "\n".join(lines + render_growth(r))


def render_reads(reads: dict, connections: int) -> list[str]:
    """The reads table at one load: each endpoint direct and through the gateway, beside the constant endpoint."""
    constant = reads["constant (users /healthz)"]["direct"]["rps"]
    lines = [
        f"## Reads ({connections} connections)",
        "",
        f"At random ids over every user in the database (`get_ids.lua`). Each figure is the median of {READ_ROUNDS} runs of "
        f"{reads['constant (users /healthz)']['direct']['duration_s']:.0f} s, made in rounds (the constant endpoint, then each "
        "read, directly and through the gateway).",
        "",
        "| endpoint | direct req/s | p99 (ms) | through the gateway req/s | p99 (ms) | gateway cost | share of the constant ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, runs in reads.items():
        direct = runs["direct"]
        gateway = runs.get("gateway")
        cost = f"{1 - gateway['rps'] / direct['rps']:.0%}" if gateway else "-"
        lines.append(
            f"| {label} | {direct['rps']:.0f} | {direct['p99_ms']:.1f} | "
            f"{gateway['rps']:.0f} | {gateway['p99_ms']:.1f} | {cost} | {direct['rps'] / constant:.0%} |"
            if gateway
            else f"| {label} | {direct['rps']:.0f} | {direct['p99_ms']:.1f} | - | - | - | 100% |"
        )
    return [*lines, ""]


def render_growth(r: dict) -> list[str]:
    growth = r["growth"]
    if len(growth) < 2:
        return []
    lines = [
        "## As the data grows",
        "",
        "The same benchmarks on databases seeded with the history of N users (`scripts/bench/seed.py`, bulk-loaded: "
        "profiles, subscriptions, completed sagas with their steps, outbox, ledger and mail rows spread over two years).",
        "",
        "| users of history | seeded in (s) | " + " | ".join(GROWTH) + " |",
        "|---|---|" + "---|" * len(GROWTH),
    ]
    base = {label: read(growth[0]) for label, read in GROWTH.items()}
    for run in growth:
        cells = []
        for label, read in GROWTH.items():
            value = read(run)
            if math.isnan(value):  # nothing completed in the window: a machine too busy to measure
                cells.append("-")
                continue
            change = f" ({value / base[label] - 1:+.0%})" if run is not growth[0] and base[label] and not math.isnan(base[label]) else ""
            cells.append(f"{value:.1f}{change}")
        seeded = f"{run['seed_s']:.0f}" if "seed_s" in run else "-"
        lines.append(f"| {run['users']:,} | {seeded} | " + " | ".join(cells) + " |")
    lines += ["", "![figures against the data's size](benchmarks-growth.png)", ""]
    lines += render_pruning([run for run in growth if "while_pruning" in run]).splitlines()
    explained = r.get("explain")
    if explained:
        unindexed = explained["unindexed"]
        lines += [
            "",
            f"EXPLAIN (ANALYZE, BUFFERS) of all {explained['queries']} query shapes the system ran at {explained['users']:,} users: "
            "`benchmarks-explain.txt`. Sequential scans of a big table: "
            + (", ".join(f"`{u['database']}.{u['table']}`" for u in unindexed) if unindexed else "**none**")
            + ".",
            "",
        ]
    return lines


def render_pruning(runs: list[dict]) -> str:
    """Registration with and without the retention job pruning the seeded history, from the same run."""
    if not runs:
        return ""
    lines = [
        "### Registration while the retention job prunes",
        "",
        "Sustained registration (8 connections), then again once the relays and `profile-retention`, started again "
        "with their default retention, are pruning the seeded history (published outbox rows older than 7 days, "
        "ledger rows and settled mail older than 30: about 96% of the history).",
        "",
        "| users of history | registrations/s | while pruning | change | saga p50 (ms) | while pruning | rows pruned during the run |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        base, pruning = run["sustained"], run["while_pruning"]
        change = f"{pruning['completed_per_s'] / base['completed_per_s'] - 1:+.0%}" if base["completed_per_s"] else "-"
        lines.append(
            f"| {run['users']:,} | {base['completed_per_s']:.1f} | {pruning['completed_per_s']:.1f} | {change} | "
            f"{base['saga_p50_ms']:.0f} | {pruning['saga_p50_ms']:.0f} | {pruning['rows_pruned']:,} of {pruning['prunable_before']:,} |"
        )
    for run in runs:
        if "batch_ms" in run:
            lines += [
                "",
                "One batch (500 rows, its own transaction), median: "
                + ", ".join(f"{t} {ms:.0f} ms" for t, ms in run["batch_ms"].items())
                + ".",
            ]
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    sys.exit(main())
