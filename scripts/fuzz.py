#!/usr/bin/env python3
"""Bad input, generated: schemathesis against each service's OpenAPI schema, directly and
through the gateway. Every response must be documented and no input may produce a 5xx.

    make fuzz                  # or: .venv/bin/python scripts/fuzz.py [--max-examples N]

Starts the test stack (its own PostgreSQL, Redis and processes; see tests/stack.py), seeds a
registered user so that lookups hit real rows too, runs schemathesis, and stops what it started.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stack import UNTHROTTLED, Stack, wait_until  # noqa: E402

SERVICES = ("users", "profile", "emails")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=60)
    args = parser.parse_args()
    stack = Stack()
    # No throttling and no send limits: past them every valid request would be a 429, and the rest of the API unexplored.
    stack.env.update({**UNTHROTTLED, "EMAILS_SEND_RATE_PER_ADDRESS": "", "EMAILS_SEND_RATE_PER_RECIPIENT": ""})
    stack.start_infra()
    stack.reset_data()
    stack.start_all()
    failures = []
    try:
        seeded = httpx.post(
            stack.url("users", "/v1/register/"),
            json={"email": "seed@example.com", "first_name": "Seed", "last_name": "User", "password": "x"},
            timeout=30,
        )
        wait_until(lambda: seeded.status_code == 201, timeout=1, what="the seed registration")
        for service in SERVICES:
            schema = stack.url(service, "/openapi.json")
            for label, base in (("direct", stack.url(service, "")), ("gateway", stack.url("gateway", ""))):
                command = [
                    str(Path(sys.executable).parent / "schemathesis"),
                    "run",
                    schema,
                    "--url",
                    base,
                    "--checks",
                    "all",
                    "--max-examples",
                    str(args.max_examples),
                    "--seed",
                    "1",
                    # A schema cannot say everything the API checks (reserved email domains such as
                    # .test, a user that must exist), so valid-looking requests may rightly be refused.
                    "--exclude-checks",
                    "positive_data_acceptance",
                    "--suppress-health-check",
                    "all",
                ]
                if label == "gateway":  # the gateway exposes the API, not each service's probes
                    command += ["--exclude-path-regex", "^/(healthz|readyz)$"]
                print(f"\n=== {service} ({label}) ===", flush=True)
                env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
                if subprocess.run(command, env=env).returncode != 0:
                    failures.append(f"{service} ({label})")
    finally:
        stack.stop_all()
    print("\nschemathesis:", "failures in " + ", ".join(failures) if failures else "no failures", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
