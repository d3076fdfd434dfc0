#!/usr/bin/env python3
"""Assertions for scripts/smoke.sh (standard library only: it runs on any host with python3).

    smoke_check.py contract TRANSCRIPT    the contract's 15 calls, each "== METHOD URL", the body,
                                          then "@@HTTP <status>@@": statuses and key fields
    smoke_check.py message-id TRANSCRIPT  prints the id of the mail the last call queued
    smoke_check.py message-sent < JSON    GET /v1/emails/{id} says the mail was sent
    smoke_check.py mail < MESSAGES_JSON   MailHog's /api/v2/messages holds the two welcome mails
                                          and the "Hi there!" mail, each exactly once

Exit status: 0 passed; 1 failed (for `message-sent` and `mail`: not yet, worth polling again);
2 failed for good.
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SECTION = re.compile(r"^== (\w+) (\S+)\n(.*?)\n?@@HTTP (\d{3})@@$", re.M | re.S)
POLLED = ("message-sent", "mail")


class Failed(Exception):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


def _responses(path: str) -> list[tuple[str, str, str, int]]:
    text = Path(path).read_text(encoding="utf-8")
    responses = [(m[1], m[2], m[3], int(m[4])) for m in SECTION.finditer(text)]
    check(len(responses) == 15, f"expected the contract's 15 responses, found {len(responses)}")
    return responses


def contract(path: str) -> None:
    responses = _responses(path)

    def answer(index: int, method: str, path_end: str, status: int) -> Any:
        got_method, url, body, got_status = responses[index]
        where = f"#{index + 1} {got_method} {url}"
        check((got_method, url.endswith(path_end)) == (method, True), f"{where}: expected {method} ...{path_end}")
        check(got_status == status, f"{where}: status {got_status}, expected {status}; body: {body}")
        try:
            return json.loads(body)
        except ValueError:
            raise Failed(f"{where}: not JSON: {body!r}") from None

    for index, (user_id, email, active) in enumerate([(1, "j@vv.cc", False), (2, "qqj@vv.cc", True)]):
        user = answer(index, "POST", "/v1/register/", 201)
        check(
            (user["id"], user["email"], user["active"], user["registration_status"]) == (user_id, email, active, "completed"),
            f"registration {index + 1}: {user}",
        )
        check("password" not in json.dumps(user) and "argon2" not in json.dumps(user), "a registration answer shows the password")
    check(answer(2, "GET", "/v1/users/1", 200)["email"] == "j@vv.cc", "GET /v1/users/1")
    check(answer(3, "GET", "/v1/users/2", 200)["email"] == "qqj@vv.cc", "GET /v1/users/2")
    check(answer(4, "GET", "/v1/users/3", 404) == {"detail": "user not found"}, "GET /v1/users/3")

    profiles = {1: (0, "XX1111111111111111111111"), 2: (7, "YY2222222222222222222222")}
    for index, user_id in ((5, 1), (6, 2)):
        profile = answer(index, "POST", "/v1/profile/add/", 201)
        check((profile["user_id"], profile["account_type"], profile["iban"]) == (user_id, *profiles[user_id]), f"profile add: {profile}")
    check(answer(7, "POST", "/v1/profile/add/", 404) == {"detail": "user not found"}, "profile add for user 3")
    for index, user_id in ((8, 1), (9, 2)):
        profile = answer(index, "GET", f"/v1/profile/{user_id}", 200)
        check((profile["user_id"], profile["account_type"], profile["iban"]) == (user_id, *profiles[user_id]), f"profile: {profile}")
    check(answer(9, "GET", "/v1/profile/2", 200)["first_name"] == "Jane", "profile 2 carries the user's name")

    for index, user_id in ((10, 1), (11, 2)):
        check(answer(index, "POST", "/v1/subscription/add/", 201)["user_id"] == user_id, f"subscription add {user_id}")
    for index, user_id in ((12, 1), (13, 2)):
        check(answer(index, "GET", f"/v1/subscription/{user_id}", 200)["user_id"] == user_id, f"subscription {user_id}")

    sent = answer(14, "POST", "/v1/emails/send/", 202)
    check((sent["to_address"], sent["subject"]) == ("qqj@vv.cc", "SSSSSSS"), f"emails send: {sent}")


def message_id(path: str) -> None:
    print(json.loads(_responses(path)[14][2])["id"])


def message_sent() -> None:
    message = json.load(sys.stdin)
    if message["status"] == "failed":
        print(f"message {message['id']} failed: {message.get('last_error')}", file=sys.stderr)
        sys.exit(2)
    check(message["status"] == "sent", f"message {message['id']}: {message['status']}")


def mail() -> None:
    items = json.load(sys.stdin)["items"]
    seen = Counter()
    for item in items:
        subject = item["Content"]["Headers"].get("Subject", [""])[0]
        for to in item["Raw"]["To"]:
            if subject == "Welcome aboard":
                seen[("welcome", to)] += 1
            elif subject == "SSSSSSS" and "Hi there!" in item["Content"]["Body"]:
                seen[("hi there", to)] += 1
    expected = [("welcome", "j@vv.cc"), ("welcome", "qqj@vv.cc"), ("hi there", "qqj@vv.cc")]
    duplicated = [key for key in expected if seen[key] > 1]
    if duplicated:
        print(f"mail: sent more than once: {duplicated}", file=sys.stderr)
        sys.exit(2)
    missing = [key for key in expected if not seen[key]]
    if missing:
        raise Failed(f"mail: not (yet) in the inbox: {missing}")


def main(argv: list[str]) -> int:
    commands = {"contract": contract, "message-id": message_id, "message-sent": message_sent, "mail": mail}
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[1]](*argv[2:])
    except Failed as failure:
        print(failure, file=sys.stderr)
        return 1 if argv[1] in POLLED else 2
    except (ValueError, KeyError, TypeError, IndexError) as error:
        print(f"{argv[1]}: unexpected answer: {error!r}", file=sys.stderr)
        return 1 if argv[1] in POLLED else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
