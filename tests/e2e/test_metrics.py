"""Prometheus metrics scraped from the real processes of the stack: the APIs' /metrics, the
workers' and the relay's metrics ports; and the gateway never publishing any of them."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from saga import RegistrationStep
from tests.stack import Stack, wait_until
from tests.utils.registration import register, unique_email, wait_for_saga
from users_svc import operators

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    try:
        response = httpx.get(url, timeout=10)
    except httpx.TransportError as exc:
        raise AssertionError(f"{url}: {exc!r}") from exc
    assert response.status_code == 200, url
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def metrics_url(system: Stack, process: str) -> str:
    ports = {
        "users-api": system.config.users_port,
        "profile-api": system.config.profile_port,
        "emails-api": system.config.emails_port,
        "users-worker": system.config.users_worker_metrics_port,
        "profile-worker": system.config.profile_worker_metrics_port,
        "emails-worker": system.config.emails_worker_metrics_port,
        "emails-mail-worker": system.config.mail_worker_metrics_port,
        "users-relay": system.config.users_relay_metrics_port,
    }
    return f"http://127.0.0.1:{ports[process]}/metrics"


def moved(system: Stack, process: str, before: Samples, name: str, **labels: str) -> float:
    """Wait until the metric grew past its value in ``before``; return the new value."""
    start = value(before, name, **labels)
    return wait_until(  # type: ignore[return-value]
        lambda: (now := value(scrape(metrics_url(system, process)), name, **labels)) > start and now,
        what=f"{name}{labels} on {process} to grow past {start}",
    )


def test_a_registration_moves_the_request_and_saga_counters(system: Stack, client: httpx.Client) -> None:
    processes = ("users-api", "users-worker", "profile-worker", "emails-worker", "emails-mail-worker")
    before = {process: scrape(metrics_url(system, process)) for process in processes}
    response = register(client, system, unique_email(), via="gateway")
    assert response.status_code in (201, 202), response.text
    wait_for_saga(client, system, response.json()["saga"]["id"], "completed")

    # The API counts by route template, method and status, and times the request.
    moved(
        system,
        "users-api",
        before["users-api"],
        "http_requests_total",
        route="/v1/register/",
        method="POST",
        status=str(response.status_code),
    )
    moved(system, "users-api", before["users-api"], "http_request_duration_seconds_count", route="/v1/register/", method="POST")
    moved(system, "users-api", before["users-api"], "sagas_started_total", kind="registration")
    moved(system, "users-worker", before["users-worker"], "sagas_completed_total", kind="registration")
    moved(system, "users-worker", before["users-worker"], "saga_duration_seconds_count", kind="registration", status="completed")
    moved(system, "profile-worker", before["profile-worker"], "saga_step_duration_seconds_count", step="create_profile", outcome="done")
    moved(system, "emails-worker", before["emails-worker"], "saga_step_duration_seconds_count", step="record_address", outcome="done")
    # The welcome mail is delivered by the mail worker, on the mail queue.
    mail_worker = "emails-mail-worker"
    moved(system, mail_worker, before[mail_worker], "saga_step_duration_seconds_count", step="send_welcome_email", outcome="done")


def test_a_failed_registration_moves_the_compensation_and_failure_counters(system: Stack, client: httpx.Client) -> None:
    before = scrape(metrics_url(system, "users-worker"))
    response = register(client, system, unique_email(f"fail-{RegistrationStep.CREATE_PROFILE}"))
    assert response.status_code in (201, 202), response.text
    wait_for_saga(client, system, response.json()["saga"]["id"], "failed")
    moved(system, "users-worker", before, "sagas_compensated_total", kind="registration")
    moved(system, "users-worker", before, "sagas_failed_total", kind="registration")
    moved(system, "users-worker", before, "saga_duration_seconds_count", kind="registration", status="failed")


def test_the_relay_reports_the_outbox_the_unfinished_sagas_and_the_queues(system: Stack) -> None:
    samples = scrape(metrics_url(system, "users-relay"))
    assert ("saga_outbox_waiting", frozenset()) in samples
    assert ("saga_outbox_oldest_age_seconds", frozenset()) in samples
    for queue in ("users", "profile", "emails"):
        assert ("celery_queue_length", frozenset({("queue", queue)})) in samples


def test_sagas_marked_as_needing_attention_are_counted(system: Stack, client: httpx.Client) -> None:
    email = unique_email("operator")
    accepted = register(client, system, email)
    saga_id = accepted.json()["saga"]["id"]
    wait_for_saga(client, system, saga_id, "completed")
    assert operators.main(["grant", email]) == 0
    token = client.post(system.url("users", "/v1/auth/login"), json={"email": email, "password": "correct horse"}).json()["access_token"]
    operator = {"Authorization": f"Bearer {token}"}
    relay = metrics_url(system, "users-relay")
    before = value(scrape(relay), "sagas_needing_attention")
    marked = client.post(system.url("gateway", f"/v1/sagas/{saga_id}/attention"), json={"note": "look"}, headers=operator)
    assert marked.status_code == 200, marked.text
    counted = wait_until(
        lambda: (now := value(scrape(relay), "sagas_needing_attention")) > before and now, what="the attention gauge to count it"
    )
    assert client.delete(system.url("gateway", f"/v1/sagas/{saga_id}/attention"), headers=operator).status_code == 200
    wait_until(lambda: value(scrape(relay), "sagas_needing_attention") < counted, what="the attention gauge to drop it")


def test_the_gateway_publishes_no_metrics(system: Stack, client: httpx.Client) -> None:
    gateway = system.url("gateway", "")
    for path in (
        "/metrics",
        "//metrics",
        "/metrics/",
        "/v1/../metrics",
        "/v1/users/../../metrics",
        "/v1/%2E%2E/metrics",
        "/docs/../metrics",
    ):
        response = client.get(f"{gateway}{path}")
        assert response.status_code in (400, 404), path
        assert "http_requests_total" not in response.text, path


@pytest.mark.parametrize("service", ["users", "profile", "emails"])
def test_every_api_serves_metrics_outside_its_openapi_document(system: Stack, client: httpx.Client, service: str) -> None:
    assert client.get(system.url(service, "/metrics")).status_code == 200
    assert "/metrics" not in client.get(system.url(service, "/openapi.json")).json()["paths"]
