"""Mail delivery has a queue and workers of its own (docs/architecture.md, "Queues"): an SMTP server
that accepts connections and never answers holds the mail workers, never the emails service's
saga steps, and once it is gone every welcome mail goes out once."""

import httpx

from tests.stack import Stack, command_line, wait_until
from tests.utils.processes import restarted_with
from tests.utils.registration import register, saga_of, unique_email, wait_for_saga
from tests.utils.smtp import FakeSMTP

BEFORE_WELCOME = ("create_profile", "record_address", "complete_registration")


def _steps(client: httpx.Client, system: Stack, saga_id: str) -> dict[str, str]:
    return {step["step"]: step["status"] for step in saga_of(client, system, saga_id)["steps"]}


def _register(client: httpx.Client, system: Stack) -> tuple[str, str]:
    email = unique_email("silent-smtp")
    accepted = register(client, system, email)
    assert accepted.status_code in (201, 202), accepted.text
    return accepted.json()["saga"]["id"], email


def test_registrations_complete_while_the_smtp_server_never_answers_and_each_welcome_mail_arrives_once_after(
    system: Stack, client: httpx.Client
) -> None:
    command = command_line(system, "emails-mail-worker")
    mail_processes = int(command[command.index("-c") + 1])
    # The mail worker waits for a reply as long as the server is silent: its deliveries are stuck
    # until the server goes, not merely slow.
    with restarted_with(system, "emails-mail-worker", {"EMAILS_SMTP_TIMEOUT_SECONDS": "3600"}):
        system.stop("mail")
        silent = FakeSMTP(int(system.env["EMAILS_SMTP_PORT"]))
        try:
            sagas = [_register(client, system) for _ in range(mail_processes)]
            wait_until(lambda: silent.accepted == mail_processes, what="every mail worker process stuck on the silent server")
            sagas += [_register(client, system) for _ in range(3)]  # their welcome mails queue behind the stuck ones

            for saga_id, _ in sagas:  # every saga step but the mail runs on the emails, profile and users workers
                wait_until(
                    lambda saga_id=saga_id: all(_steps(client, system, saga_id)[step] == "done" for step in BEFORE_WELCOME),
                    what=f"saga {saga_id} to pass its pivot",
                )
            assert silent.accepted == mail_processes  # delivery is still stuck: no attempt ended, none began
            assert all(_steps(client, system, saga_id)["send_welcome_email"] != "done" for saga_id, _ in sagas)
        finally:
            silent.close()  # the stuck deliveries see the connection closed and are retried
            system.start("mail")

        for saga_id, email in sagas:
            wait_for_saga(client, system, saga_id, "completed")
            wait_until(lambda email=email: system.mail_to(email), what=f"the welcome mail to {email}")
        assert [len(system.mail_to(email)) for _, email in sagas] == [1] * len(sagas)
