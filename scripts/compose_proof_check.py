#!/usr/bin/env python3
"""Assertions for scripts/compose-proof.sh beyond the smoke script's (standard library only:
it runs on the host; scripts/smoke_check.py checks the contract's calls and the mail).

    compose_proof_check.py gateway BASE_URL      nginx's own answers: JSON 404 and 413, X-Request-ID
    compose_proof_check.py flower-workers N < WORKERS_JSON   Flower's /api/workers lists N live
                                                 workers on each service queue

Exit status: 0 passed; 1 failed (for `flower-workers`: not yet, worth polling again);
2 failed for good.
"""

import json
import sys
import urllib.error
import urllib.request
from collections import Counter

QUEUES = ("users", "profile", "emails")


class Failed(Exception):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


def _request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310  # a URL on this machine
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def gateway(base: str) -> None:
    status, headers, body = _request(f"{base}/nowhere")
    check((status, json.loads(body)) == (404, {"detail": "not found"}), f"gateway /nowhere: {status} {body!r}")
    check(headers.get("X-Request-ID"), "gateway: no X-Request-ID on its answer")
    status, headers, _ = _request(f"{base}/v1/users/1", headers={"X-Request-ID": "compose-proof-trace"})
    check((status, headers.get("X-Request-ID")) == (200, "compose-proof-trace"), f"gateway: X-Request-ID not passed through: {headers}")
    big = b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, _, body = _request(f"{base}/v1/register/", data=big, headers={"Content-Type": "application/json"})
    check((status, json.loads(body)) == (413, {"detail": "request body too large"}), f"gateway 2 MiB body: {status} {body!r}")


def flower_workers(per_queue: str) -> None:
    workers = json.load(sys.stdin)
    counts = Counter(name.split("@", 1)[0] for name in workers)
    check(all(counts[q] == int(per_queue) for q in QUEUES), f"flower: workers per queue {dict(counts)}, expected {per_queue} each")


def main(argv: list[str]) -> int:
    commands = {"gateway": gateway, "flower-workers": flower_workers}
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[1]](*argv[2:])
    except Failed as failure:
        print(failure, file=sys.stderr)
        return 1 if argv[1] == "flower-workers" else 2
    except (ValueError, KeyError, TypeError) as error:
        print(f"{argv[1]}: unexpected answer: {error!r}", file=sys.stderr)
        return 1 if argv[1] == "flower-workers" else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
