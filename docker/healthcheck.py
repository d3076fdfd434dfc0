#!/usr/bin/env python
"""Container health probes (Docker HEALTHCHECK / compose healthcheck), stdlib apart from celery.

healthcheck http URL                  the URL answers 2xx (the APIs' /readyz: database and broker)
healthcheck celery NODE BROKER_ENV    this container's worker NODE@hostname answers a ping
healthcheck fresh FILE SECONDS        FILE was touched within SECONDS (a relay's heartbeat)
"""

import os
import socket
import sys
import time
import urllib.request


def http(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310  # a fixed local URL
        return 200 <= response.status < 300


def celery(node: str, broker_env: str) -> bool:
    from celery import Celery

    app = Celery(broker=os.environ[broker_env])
    destination = f"{node}@{socket.gethostname()}"
    return bool(app.control.ping(destination=[destination], timeout=3))


def fresh(path: str, seconds: str) -> bool:
    return time.time() - os.path.getmtime(path) < float(seconds)


def main(argv: list[str]) -> int:
    checks = {"http": http, "celery": celery, "fresh": fresh}
    if len(argv) < 2 or argv[1] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        healthy = checks[argv[1]](*argv[2:])
    except Exception as exc:
        print(f"unhealthy: {exc!r}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
