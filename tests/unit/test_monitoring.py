"""monitoring/: the Prometheus configurations load, the alert rules are valid and pass their unit
tests (promtool, from Debian's prometheus package: make setup installs it), and every metric the
rules read is one the services expose."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"


def promtool(*args: str) -> None:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is not installed: run make setup (Debian's prometheus package)")
    finished = subprocess.run([tool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr


@pytest.mark.parametrize("config", ["prometheus-dev.yml", "prometheus-prod.yml"])
def test_the_prometheus_configurations_load_with_their_rules(config: str) -> None:
    promtool("check", "config", config)


def test_the_alert_rules_are_valid() -> None:
    promtool("check", "rules", "alerts.yml")


def test_the_alert_rules_pass_their_unit_tests() -> None:
    promtool("test", "rules", "alerts-test.yml")


def test_every_alert_has_a_summary_a_description_and_a_severity_and_is_tested() -> None:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    tested = {
        case["alertname"]
        for test in yaml.safe_load((MONITORING / "alerts-test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    for alert in alerts:
        assert {"summary", "description"} <= alert["annotations"].keys(), alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        assert alert["alert"] in tested, alert["alert"]
    documented = (ROOT / "docs" / "operations.md").read_text()
    assert all(f"`{alert['alert']}`" in documented for alert in alerts)  # what it means, what to do


def test_the_rules_read_metrics_the_services_expose() -> None:
    sources = "".join(path.read_text() for path in [ROOT / "saga" / "_metrics.py", ROOT / "users_svc" / "metrics.py"])
    exprs = " ".join(rule["expr"] for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"] for rule in group["rules"])
    exprs = re.sub(r"\b(by|without) \([^)]*\)", "", exprs)  # label lists, not metrics
    names = set(re.findall(r"\b([a-z_]+)\{", exprs)) | set(re.findall(r"\(([a-z_]+)\)", exprs))
    assert names
    for name in names - {"up"}:
        assert f'"{name.removesuffix("_total")}"' in sources, name
