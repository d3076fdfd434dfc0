"""Retention on the running system: the relays and the profile retention process prune what is
past its retention and keep the rest; a step delivered again after its rows were pruned (its
saga past the deadline) is discarded by the workers unrun, so nothing is done twice."""

import httpx

from emails_svc import relay as emails_relay
from emails_svc.config import get_settings as emails_settings
from profile_svc import retention as profile_retention
from profile_svc.config import get_settings as profile_settings
from saga import SAGA_DEADLINE, Pruner, TaskName, make_sessionmaker
from tests.stack import Stack, wait_until
from tests.utils.registration import register, saga_of, unique_email, wait_for_saga

RETENTION_PROCESSES = ("users-relay", "emails-relay", "profile-retention")
# Each a little past its service's default retention.
AGE = {"outbox": "8 days", "ledger": "31 days", "mail": "31 days"}


def _registered(system: Stack, client: httpx.Client) -> tuple[str, str, int]:
    email = unique_email("retention")
    accepted = register(client, system, email)
    assert accepted.status_code in (201, 202), accepted.text
    saga_id, user_id = accepted.json()["saga"]["id"], accepted.json()["id"]
    wait_for_saga(client, system, saga_id, "completed")
    wait_until(lambda: system.mail_to(email), what="the welcome mail")
    return email, saga_id, user_id


def _age_rows_of(system: Stack, saga_id: str) -> None:
    system.query("users", "UPDATE outbox_message SET published_at = published_at - %s::interval WHERE saga_id = %s", AGE["outbox"], saga_id)
    for service in ("profile", "emails"):
        system.query(service, "UPDATE saga_step_log SET updated_at = updated_at - %s::interval WHERE saga_id = %s", AGE["ledger"], saga_id)
    system.query("emails", "UPDATE message SET created_at = created_at - %s::interval WHERE saga_id = %s", AGE["mail"], saga_id)


def _rows_of(system: Stack, saga_id: str) -> dict[str, int]:
    def count(service: str, table: str) -> int:
        rows = system.query(service, f"SELECT count(*) FROM {table} WHERE saga_id = %s", saga_id)  # noqa: S608  # this file's table names
        return int(rows[0][0])  # type: ignore[call-overload]

    return {
        "outbox": count("users", "outbox_message"),
        "profile ledger": count("profile", "saga_step_log"),
        "emails ledger": count("emails", "saga_step_log"),
        "mail": count("emails", "message"),
    }


def test_the_relays_and_the_profile_retention_process_prune_what_is_past_its_retention(system: Stack, client: httpx.Client) -> None:
    _, old, _ = _registered(system, client)
    _, young, _ = _registered(system, client)
    kept = _rows_of(system, young)
    assert kept == {"outbox": 1, "profile ledger": 1, "emails ledger": 1, "mail": 1}
    _age_rows_of(system, old)

    for name in RETENTION_PROCESSES:  # started again, each prunes on its first pass
        system.stop(name)
        system.start(name)

    empty = dict.fromkeys(kept, 0)
    wait_until(lambda: _rows_of(system, old) == empty, what="the old saga's rows to be pruned")
    assert _rows_of(system, young) == kept


def test_a_step_delivered_again_after_its_rows_were_pruned_is_discarded_unrun(system: Stack, client: httpx.Client) -> None:
    email, saga_id, user_id = _registered(system, client)
    before = saga_of(client, system, saga_id)
    # The saga started longer ago than the deadline, and its ledger rows and mail are past their retention.
    past_deadline = f"{SAGA_DEADLINE.total_seconds() + 60} seconds"
    system.query("users", "UPDATE saga SET created_at = created_at - %s::interval WHERE id = %s", past_deadline, saga_id)
    _age_rows_of(system, saga_id)
    for pruner in (
        Pruner(make_sessionmaker(profile_settings().database_url), profile_retention.retentions(profile_settings())),
        Pruner(make_sessionmaker(emails_settings().database_url), emails_relay.retentions(emails_settings())),
    ):
        pruner.one_pass()
    assert _rows_of(system, saga_id) | {"outbox": 1} == {"outbox": 1, "profile ledger": 0, "emails ledger": 0, "mail": 0}

    # Published again as a re-drive would: the whole chain, and the steps after the pivot.
    system.query("users", "INSERT INTO outbox_message (saga_id, kind) VALUES (%s, 'start'), (%s, 'welcome')", saga_id, saga_id)
    for worker, task, step in (
        ("profile-worker", TaskName.CREATE_PROFILE, "create_profile"),
        ("emails-mail-worker", TaskName.SEND_WELCOME_EMAIL, "send_welcome_email"),
    ):
        discarded = f"Discarding revoked task: {task}[{saga_id}:{step}]"
        log = system.logs / f"{worker}.log"
        wait_until(lambda log=log, discarded=discarded: discarded in log.read_text(), what=f"{step} to be discarded")

    assert _rows_of(system, saga_id) == {"outbox": 3, "profile ledger": 0, "emails ledger": 0, "mail": 0}  # nothing ran again
    assert system.query("profile", "SELECT count(*) FROM profile WHERE user_id = %s", user_id) == [(1,)]
    assert len(system.mail_to(email)) == 1
    after = saga_of(client, system, saga_id)
    assert (after["status"], after["steps"]) == (before["status"], before["steps"])
