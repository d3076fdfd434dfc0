"""The compose files, the gateway image and .gitattributes say what production needs."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ["JWT_SIGNING_KEY", "POSTGRES_PASSWORD", "USERS_DB_PASSWORD", "PROFILE_DB_PASSWORD", "EMAILS_DB_PASSWORD", "REDIS_PASSWORD",
           "FLOWER_PASSWORD"]  # fmt: skip


def _compose(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def test_every_secret_of_the_production_file_is_required_and_none_has_a_default() -> None:
    text = (ROOT / "docker-compose-prod.yml").read_text()
    uses = re.findall(r"\$\{(\w+)(:?[-?])?([^}]*)\}", text)
    for name in SECRETS:
        forms = {(op, message) for used, op, message in uses if used == name}
        assert forms, f"{name} is not used"
        assert all(op == ":?" and f"set {name} in .env" in message for op, message in forms), (name, forms)
    assert "changethis" not in text
    assert re.search(r"_ENVIRONMENT: \$\{ENVIRONMENT:-production\}", text)


def test_env_example_sets_production_mode_and_holds_no_secret_value() -> None:
    settings = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if re.match(r"^\w+=", line))
    assert settings["ENVIRONMENT"] == "production"
    assert {name: settings[name] for name in SECRETS} == dict.fromkeys(SECRETS, "")
    assert "openssl rand -hex 32" in (ROOT / ".env.example").read_text()


def test_the_development_and_production_files_share_no_volume_or_network() -> None:
    dev, prod = _compose("docker-compose.yml"), _compose("docker-compose-prod.yml")
    assert not set(dev["volumes"]) & set(prod["volumes"])
    assert not set(dev["networks"]) & set(prod["networks"])
    # Not even the default network: every production service names its own.
    assert all(service.get("networks") for service in prod["services"].values())


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose-prod.yml"])
def test_the_apis_believe_x_forwarded_for_from_the_gateway_only(name: str) -> None:
    compose = _compose(name)
    text = (ROOT / name).read_text()
    gateway_networks = compose["services"]["gateway"]["networks"]
    [(network, settings)] = gateway_networks.items()
    address = settings["ipv4_address"]
    for service in ("users-api", "profile-api", "emails-api"):
        assert compose["services"][service]["environment"]["FORWARDED_ALLOW_IPS"] == address
        assert network in compose["services"][service]["networks"]
    assert "FORWARDED_ALLOW_IPS: *" not in text
    assert 'FORWARDED_ALLOW_IPS: "*"' not in text


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose-prod.yml"])
def test_mailhog_runs_emulated_on_hosts_that_are_not_amd64(name: str) -> None:
    assert _compose(name)["services"]["mailhog"]["platform"] == "linux/amd64"


def test_the_gateway_image_is_on_a_stable_nginx_line() -> None:
    [image] = re.findall(r"^FROM (\S+)", (ROOT / "nginx" / "Dockerfile").read_text(), re.M)
    major, minor = map(int, re.match(r"nginx:(\d+)\.(\d+)", image).groups())  # type: ignore[union-attr]
    assert minor % 2 == 0, image  # nginx's stable lines have even minor numbers
    assert (major, minor) >= (1, 28), image


@pytest.mark.parametrize(
    "path",
    ["scripts/setup.sh", "docker/postgres/create-databases.sh", "docker/healthcheck.py", "nginx/40-gateway-tls.sh",
     "nginx/45-gateway-docs.sh", "nginx/docs.conf",
     "nginx/15-gateway-upstreams.envsh", "nginx/50-gateway-follow-upstreams.sh", "docker/users.Dockerfile",
     "nginx/Dockerfile", "nginx/templates/gateway.conf.template", "Procfile", ".env.example"],
)  # fmt: skip
def test_scripts_keep_lf_line_endings_on_every_checkout(path: str) -> None:
    attributes = subprocess.run(["git", "-C", str(ROOT), "check-attr", "eol", "--", path], capture_output=True, text=True, check=True)
    assert attributes.stdout.strip().endswith("eol: lf"), attributes.stdout


def test_generate_secrets_fills_every_empty_secret_once_and_keeps_the_rest(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text().replace("FLOWER_PASSWORD=\n", "FLOWER_PASSWORD=mine-already\n"))
    script = [str(ROOT / "scripts" / "generate-secrets.sh"), str(env_file)]
    subprocess.run(script, check=True, capture_output=True)
    first = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if re.match(r"^\w+=", line))
    assert first["FLOWER_PASSWORD"] == "mine-already"
    generated = [first[name] for name in SECRETS if name != "FLOWER_PASSWORD"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in generated), generated
    assert len(set(generated)) == len(generated)  # a new value for each
    subprocess.run(script, check=True, capture_output=True)
    assert env_file.read_text().count("=") == (ROOT / ".env.example").read_text().count("=")  # nothing added twice
    assert dict(line.split("=", 1) for line in env_file.read_text().splitlines() if re.match(r"^\w+=", line)) == first
    assert env_file.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_the_gateway_keeps_upstream_connections_to_every_api() -> None:
    template = (ROOT / "nginx" / "templates" / "gateway.conf.template").read_text()
    upstreams = dict(re.findall(r"^upstream (\w+) \{(.*?)^\}", template, re.S | re.M))
    assert set(upstreams) == {"users_api", "profile_api", "emails_api", "flower"}
    for name, body in upstreams.items():
        assert re.search(r"^\s*zone \w+ \d+k;", body, re.M), name
        assert re.search(r"^\s*server \$\{\w+_UPSTREAM\}\$\{GATEWAY_UPSTREAM_RESOLVE\};", body, re.M), name
        assert re.search(r"^\s*keepalive \d+;", body, re.M), name
        assert "keepalive_timeout 4s;" in body, name  # below uvicorn's 5 s
    assert set(re.findall(r"proxy_pass http://(\w+);", template)) == set(upstreams)
    assert "proxy_http_version 1.1;" in template
    assert 'proxy_set_header Connection "";' in template


@pytest.mark.parametrize(
    ("version", "resolve"),
    [("1.28.0", " resolve"), ("1.27.3", " resolve"), ("1.29.1", " resolve"), ("1.27.2", ""), ("1.22.1", ""), ("2.0.0", " resolve")],
)
def test_the_gateway_image_resolves_upstreams_where_nginx_can(tmp_path: Path, version: str, resolve: str) -> None:
    fake = tmp_path / "nginx"
    fake.write_text(f"#!/bin/sh\necho 'nginx version: nginx/{version}' >&2\n")
    fake.chmod(0o755)
    script = f'. "{ROOT / "nginx" / "15-gateway-upstreams.envsh"}" >/dev/null; printf "[%s]" "$GATEWAY_UPSTREAM_RESOLVE"'
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    assert subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, env=env).stdout == f"[{resolve}]"
    # Set by hand, it wins.
    env["GATEWAY_UPSTREAM_RESOLVE"] = ""
    assert subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, env=env).stdout == "[]"


def test_on_older_nginx_the_gateway_reloads_when_an_upstream_address_changes(tmp_path: Path) -> None:
    # Stand-ins for getent (users-api's address read from a file) and nginx (which records its calls).
    address = tmp_path / "address"
    address.write_text("172.16.80.3")
    calls = tmp_path / "calls"
    (tmp_path / "getent").write_text(f'#!/bin/sh\n[ "$2" = users-api ] && echo "$(cat {address}) STREAM users-api"\n')
    (tmp_path / "nginx").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    for tool in ("getent", "nginx"):
        (tmp_path / tool).chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "USERS_UPSTREAM": "users-api:8000", "PROFILE_UPSTREAM": "127.0.0.1:8008",
           "GATEWAY_UPSTREAM_RESOLVE": "", "GATEWAY_FOLLOW_INTERVAL_SECONDS": "0.1"}  # fmt: skip
    script = subprocess.Popen(["sh", str(ROOT / "nginx" / "50-gateway-follow-upstreams.sh")], env=env, start_new_session=True)
    try:
        assert script.wait(timeout=30) == 0  # nginx starts; the watcher runs on in the background
        time.sleep(0.5)
        assert not calls.exists()  # nothing moved: no reload
        address.write_text("172.16.80.9")  # the container was recreated elsewhere
        deadline = time.monotonic() + 30
        while not (calls.exists() and "-s reload" in calls.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert calls.read_text().splitlines() == ["-s reload"]
    finally:
        os.killpg(script.pid, signal.SIGKILL)
