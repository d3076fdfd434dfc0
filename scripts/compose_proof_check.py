#!/usr/bin/env python3
"""Assertions for scripts/compose-proof.sh beyond the smoke script's (standard library only:
it runs on the host; scripts/smoke_check.py checks the contract's calls and the mail).

    compose_proof_check.py gateway BASE_URL      nginx's own answers: JSON 404 and 413, X-Request-ID;
                                                 the saga console's page with its Content-Security-Policy
    compose_proof_check.py flower-workers N < WORKERS_JSON   Flower's /api/workers lists N live
                                                 workers on each queue
    compose_proof_check.py docs BASE_URL on|off  the APIs' docs at /docs/ (Swagger UI, the three
                                                 OpenAPI documents) served, or all 404; /metrics 404
    compose_proof_check.py prometheus-targets N < TARGETS_JSON   Prometheus's /api/v1/targets:
                                                 N active targets, every one up
    compose_proof_check.py prometheus-positive < QUERY_JSON      a query's result above 0
    compose_proof_check.py tokens BASE_URL       (tokens required) an access token signed with any
                                                 key found in the repository is refused by every
                                                 service; a genuine one (the contract's user 1) is not

Exit status: 0 passed; 1 failed (for `flower-workers` and `prometheus-*`: not yet, worth polling again);
2 failed for good.
"""

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

QUEUES = ("users", "profile", "emails", "mail")


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
    for path in ("/console/", "/console/console.js"):
        status, headers, body = _request(f"{base}{path}")
        policy = {k.lower(): v for k, v in headers.items()}.get("content-security-policy", "")
        check(status == 200 and "script-src 'self'" in policy, f"gateway {path}: {status}, Content-Security-Policy {policy!r}")


def flower_workers(per_queue: str) -> None:
    workers = json.load(sys.stdin)
    counts = Counter(name.split("@", 1)[0] for name in workers)
    check(all(counts[q] == int(per_queue) for q in QUEUES), f"flower: workers per queue {dict(counts)}, expected {per_queue} each")


SERVICES = ("users", "profile", "emails")


def docs(base: str, state: str) -> None:
    documents = [f"/docs/{service}/openapi.json" for service in SERVICES]
    if state == "off":
        for path in ["/docs/", "/docs/assets/swagger-ui.css", *documents]:
            status, _, body = _request(f"{base}{path}")
            check(status == 404, f"docs off: {path} answered {status} {body[:100]!r}")
    else:
        status, headers, page = _request(f"{base}/docs/")
        check(status == 200 and headers.get("Content-Type", "").startswith("text/html"), f"docs: /docs/ answered {status}")
        for asset in re.findall(rb'(?:src|href)="([^"]+)"', page):
            check(not asset.startswith((b"http:", b"https:", b"//")), f"docs: /docs/ loads {asset!r} from elsewhere")
            status, _, _ = _request(f"{base}/docs/{asset.decode()}")
            check(status == 200, f"docs: /docs/{asset.decode()} answered {status}")
        for service, path in zip(SERVICES, documents, strict=True):
            status, _, body = _request(f"{base}{path}")
            check(status == 200 and json.loads(body)["info"]["title"] == service, f"docs: {path} answered {status}")
    for path in ("/metrics", "//metrics", "/v1/../metrics", "/docs/../metrics"):
        status, _, body = _request(f"{base}{path}")
        check(status in (400, 404) and b"http_requests_total" not in body, f"gateway: {path} answered {status}: metrics published")
    print(f"docs {state} at {base}/docs/, no /metrics through the gateway")


def prometheus_targets(count: str) -> None:
    targets = json.load(sys.stdin)["data"]["activeTargets"]
    down = [f"{t['labels'].get('job')} {t['labels'].get('instance')}: {t.get('lastError', '')}" for t in targets if t["health"] != "up"]
    check(len(targets) == int(count) and not down, f"prometheus: {len(targets)} targets (expected {count}), not up: {down}")


def prometheus_positive() -> None:
    result = json.load(sys.stdin)["data"]["result"]
    check(result and float(result[0]["value"][1]) > 0, f"prometheus: query result {result}")


def _repository_keys() -> set[str]:
    """Every string that could be a signing key in the repository: the literals on lines that
    speak of a key, a secret or signing (and "k" * 32 style ones), in every tracked text file."""
    root = Path(__file__).resolve().parent.parent
    files = subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    literal = re.compile(r"\"([^\"\n]{8,})\"|'([^'\n]{8,})'")
    repeated = re.compile(r"[\"'](.{1,4})[\"']\s*\*\s*(\d{1,3})")
    keys = set()
    for name in files:
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for line in text.splitlines():
            if re.search(r"key|secret|signing", line, re.I):
                keys.update(a or b for a, b in literal.findall(line))
                keys.update(chunk * int(times) for chunk, times in repeated.findall(line))
    return keys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(key: str, user_id: int) -> str:
    """An HS256 access token for user_id, as the users service would sign it with key."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": str(user_id), "jti": uuid.uuid4().hex, "typ": "access", "iat": now, "exp": now + 600}
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def tokens(base: str) -> None:
    # An endpoint of each service that needs a token (profile and emails: when tokens are required).
    mail = json.dumps({"user_id": 1, "subject": "compose-proof token check", "body": "sent with a genuine token"}).encode()
    guarded = [
        ("/v1/users/me", None),
        ("/v1/users/1", None),
        ("/v1/profile/1", None),
        ("/v1/subscription/1", None),
        ("/v1/emails/send/", mail),
    ]
    json_type = {"Content-Type": "application/json"}

    def call(path: str, data: bytes | None, token: str | None) -> tuple[int, bytes]:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        status, _, body = _request(f"{base}{path}", data=data, headers=json_type | auth)
        return status, body

    status, body = call("/v1/auth/login", json.dumps({"email": "j@vv.cc", "password": "x"}).encode(), None)
    check(status == 200, f"tokens: the contract's user could not log in: {status} {body!r}")
    genuine = json.loads(body)["access_token"]
    for path, data in guarded:
        status, body = call(path, data, genuine)
        check(status in (200, 202), f"tokens: a genuine token on {path}: {status} {body!r}")
        status, body = call(path, data, None)
        check(status == 401, f"tokens: no token on {path}: {status} {body!r} (are tokens required?)")
    status, body = call("/v1/users/2", None, genuine)
    check(status == 403, f"tokens: user 1's token on /v1/users/2: {status} {body!r} (only its owner may read a user)")
    keys = _repository_keys()
    check(len(keys) > 10, f"tokens: only {len(keys)} candidate keys found in the repository")
    for key in sorted(keys):
        forged = _forge(key, 1)
        for path, data in guarded:
            status, body = call(path, data, forged)
            check(status == 401, f"tokens: a token signed with {key!r} from the repository got {status} on {path}: {body!r}")
    paths = ", ".join(path for path, _ in guarded)
    print(f"tokens: a genuine token works; tokens signed with each of {len(keys)} keys found in the repository are refused on {paths}")


def main(argv: list[str]) -> int:
    commands = {
        "gateway": gateway,
        "flower-workers": flower_workers,
        "docs": docs,
        "prometheus-targets": prometheus_targets,
        "prometheus-positive": prometheus_positive,
        "tokens": tokens,
    }
    retried = ("flower-workers", "prometheus-targets", "prometheus-positive")
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[1]](*argv[2:])
    except Failed as failure:
        print(failure, file=sys.stderr)
        return 1 if argv[1] in retried else 2
    except (ValueError, KeyError, TypeError) as error:
        print(f"{argv[1]}: unexpected answer: {error!r}", file=sys.stderr)
        return 1 if argv[1] in retried else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
