"""The API docs at one address through the real gateway: one Swagger UI page at /docs/, its assets
served here (no CDN), each service's OpenAPI document; none of it, nor any /metrics, in the
production shape (GATEWAY_DOCS=off). And Flower's own port opens on Flower, not on a 404."""

import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from scripts import devstack
from tests.stack import Stack, wait_until

SERVICES = ("users", "profile", "emails")


def test_the_gateway_serves_one_swagger_ui_over_the_three_services(system: Stack, client: httpx.Client) -> None:
    gateway = system.url("gateway", "")
    page = client.get(f"{gateway}/docs/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for service in SERVICES:
        assert f'"url": "{service}/openapi.json", "name": "{service}"' in page.text
    # Every script and stylesheet comes from the gateway itself.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets
    assert all(not asset.startswith(("http:", "https:", "//")) for asset in assets), assets
    for asset in assets:
        assert client.get(f"{gateway}/docs/{asset}").status_code == 200, asset
    assert client.get(f"{gateway}/docs", follow_redirects=False).headers["location"] == "/docs/"


@pytest.mark.parametrize("service", SERVICES)
def test_each_services_openapi_document_is_at_the_gateway(system: Stack, client: httpx.Client, service: str) -> None:
    through_gateway = client.get(system.url("gateway", f"/docs/{service}/openapi.json"))
    assert through_gateway.status_code == 200
    assert through_gateway.json() == client.get(system.url(service, "/openapi.json")).json()
    assert through_gateway.json()["info"]["title"] == service


def test_the_docs_are_read_only(system: Stack, client: httpx.Client) -> None:
    for path in ("/docs/", "/docs/users/openapi.json", "/docs/assets/swagger-ui.css"):
        assert client.post(system.url("gateway", path)).status_code == 403, path


@pytest.fixture
def production_gateway(system: Stack) -> Iterator[str]:
    """A second nginx with the gateway config as production renders it by default (GATEWAY_DOCS=off)."""
    nginx_dir = system.config.run_dir / "nginx-prod"
    port = system.config.gateway_port + 2
    devstack.render_gateway(system.config, nginx_dir=nginx_dir, port=port, docs=False)
    with (system.logs / "gateway-prod.log").open("ab") as log:
        process = subprocess.Popen(
            ["nginx", "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"), "-g", "daemon off;"],
            env=system.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is None and httpx.get(f"{url}/healthz", timeout=2).status_code == 200, what="the gateway")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_production_gateway_serves_no_docs_and_no_metrics(production_gateway: str, client: httpx.Client) -> None:
    assert client.get(f"{production_gateway}/v1/users/1").status_code in (200, 404)  # the APIs are there
    hidden = ["/docs", "/docs/", "/docs/services", "/docs/assets/swagger-ui.css", "/openapi.json", "/flower/metrics"]
    hidden += [f"/docs/{service}/openapi.json" for service in SERVICES]
    hidden += ["/metrics", "//metrics", "/metrics/", "/v1/../metrics", "/v1/users/../../metrics", "/docs/../metrics", "/v1/%2E%2E/metrics"]
    for path in hidden:
        response = client.get(f"{production_gateway}{path}")
        assert response.status_code in (400, 404), path
        assert "http_requests_total" not in response.text, path


def test_flowers_own_port_opens_on_flower(system: Stack, client: httpx.Client) -> None:
    flower = f"http://127.0.0.1:{system.config.flower_port}"
    root = client.get(f"{flower}/")
    assert (root.status_code, root.headers["location"]) == (302, "/flower/")
    opened = client.get(f"{flower}/", follow_redirects=True)
    assert opened.status_code == 200
    assert "Flower" in opened.text
    assert client.get(f"{flower}/nowhere").status_code == 404
