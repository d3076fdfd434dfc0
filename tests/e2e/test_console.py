"""The saga console in a real headless browser (Debian's Chromium through its chromedriver), through the gateway.

What a person sees: the login refusing an account without the operator role, a failing
registration appearing in the list by itself, its timeline with the steps and the compensation
as bars and the error inline, the actions, and an action landing in the saga's history. The
screenshot it takes is the README's (docs/console.png) when CONSOLE_SCREENSHOT names it.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from saga import RegistrationStep
from tests.stack import ROOT, Stack, wait_until
from tests.utils.registration import register, saga_of, unique_email, wait_for_saga

PASSWORD = "correct horse"  # what register() signs up with
# The README's picture is refreshed on request only, so a test run leaves the tree clean:
# CONSOLE_SCREENSHOT=docs/console.png .venv/bin/pytest tests/e2e/test_console.py
SCREENSHOT = ROOT / os.environ.get("CONSOLE_SCREENSHOT", ".run/console.png")
# Bounds that only keep a broken run finite: the page refreshes itself every 5 s.
WAIT_SECONDS = 60


def _executable(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"none of {', '.join(names)} is installed: scripts/setup.sh installs Debian's chromium and chromium-driver")


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager never downloads a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("chromium", "chromium-browser", "google-chrome")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_executable("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> object:
    wait = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    return wait.until(condition, message=f"the console did not show {what}")


def _shown(driver: WebDriver, css: str) -> WebElement:
    """The element once it is displayed (the page re-renders on every refresh: looked up anew each time)."""

    def find(d: WebDriver) -> WebElement | None:
        element = d.find_element(By.CSS_SELECTOR, css)
        return element if element.is_displayed() else None

    return _wait(driver, find, css)  # type: ignore[return-value]


def _text_of(driver: WebDriver, css: str, text: str) -> str:
    """Wait until the element at ``css`` shows ``text``; its whole text."""
    return _wait(driver, lambda d: (t := d.find_element(By.CSS_SELECTOR, css).text) and text in t and t, f"{text!r} in {css}")  # type: ignore[return-value]


def _log_in(driver: WebDriver, email: str) -> None:
    _shown(driver, "#login-email").clear()
    driver.find_element(By.ID, "login-email").send_keys(email)
    driver.find_element(By.ID, "login-password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()


def _registered(client: httpx.Client, system: Stack, email: str) -> dict:
    answer = register(client, system, email, via="gateway")
    assert answer.status_code in (201, 202), answer.text
    return answer.json()


def _grant_operator(system: Stack, email: str) -> None:
    subprocess.run([sys.executable, "-m", "users_svc.operators", "grant", email], cwd=ROOT, env=system.env, check=True, capture_output=True)


def test_the_console_is_served_by_the_gateway_with_its_own_policy(system: Stack, client: httpx.Client) -> None:
    redirect = client.get(system.url("gateway", "/console"))
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "/console/"
    for path, kind in (("/console/", "text/html"), ("/console/console.js", "javascript"), ("/console/console.css", "text/css")):
        answer = client.get(system.url("gateway", path))
        assert answer.status_code == 200, path
        assert kind in answer.headers["content-type"]
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
    assert client.get(system.url("gateway", "/console/nothing-here.js")).status_code == 404


def test_an_operator_finds_a_failed_saga_sees_its_timeline_and_marks_it(system: Stack, client: httpx.Client, browser: WebDriver) -> None:
    operator = unique_email("operator")
    bystander = unique_email("bystander")
    for email in (operator, bystander):
        wait_for_saga(client, system, _registered(client, system, email)["saga"]["id"], "completed")
    _grant_operator(system, operator)
    # Other sagas beside it in the list, failing elsewhere (the picture shows them too).
    for step in (RegistrationStep.CREATE_PROFILE, RegistrationStep.COMPLETE_REGISTRATION):
        _registered(client, system, unique_email(f"fail-{step}"))
    console = system.url("gateway", "/console")

    # An account without the role is turned away with a message saying why.
    browser.get(console)
    _log_in(browser, bystander)
    _text_of(browser, "#login-message", "is not an operator")
    assert browser.find_element(By.ID, "console-view").is_displayed() is False

    _log_in(browser, operator)
    _shown(browser, "#saga-rows tr[data-saga-id]")
    assert _text_of(browser, "#session-email", operator) == operator

    # A registration failing in a known step, started while the console is open: the list shows
    # it by itself (it refreshes every 5 s), with its status and failed step.
    failing = unique_email(f"fail-{RegistrationStep.RECORD_ADDRESS}")
    saga_id = _registered(client, system, failing)["saga"]["id"]
    wait_for_saga(client, system, saga_id, "failed")
    row = f'#saga-rows tr[data-saga-id="{saga_id}"]'
    _text_of(browser, row, "failed")
    cells = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, f"{row} td")]
    assert cells[1:] == ["registration", "failed", failing, RegistrationStep.RECORD_ADDRESS]
    assert "failed" in browser.find_element(By.ID, "counts").text

    # The filters narrow the list to it.
    Select(browser.find_element(By.ID, "f-status")).select_by_visible_text("failed")
    browser.find_element(By.ID, "f-email").send_keys(failing)
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#saga-rows tr[data-saga-id]")) == 1, "only the failed saga")
    assert browser.find_element(By.CSS_SELECTOR, "#saga-rows tr[data-saga-id]").get_attribute("data-saga-id") == saga_id

    # Its timeline: the step done, then compensated; the failed step with its error inline.
    browser.find_element(By.CSS_SELECTOR, f'{row} a[href="#saga={saga_id}"]').click()
    _text_of(browser, "#detail-title", saga_id)
    summary = _text_of(browser, "#detail-summary", RegistrationStep.RECORD_ADDRESS)
    assert "failed" in summary
    assert "failpoint fail-record_address" in summary
    timeline = '#timeline [data-row="{}"] .bar.{}'
    _shown(browser, timeline.format(f"step:{RegistrationStep.CREATE_PROFILE}", "done"))
    _shown(browser, timeline.format(f"step:{RegistrationStep.RECORD_ADDRESS}", "failed"))
    _shown(browser, timeline.format(f"compensation:{RegistrationStep.CREATE_PROFILE}", "compensation"))
    error = browser.find_element(By.CSS_SELECTOR, f'#timeline [data-row="step:{RegistrationStep.RECORD_ADDRESS}:error"]').text
    assert "failpoint fail-record_address" in error
    assert not browser.find_elements(By.CSS_SELECTOR, "#timeline .bar.running")
    # Steps after the failure never ran: no bar.
    assert not browser.find_elements(By.CSS_SELECTOR, f'#timeline [data-row="step:{RegistrationStep.COMPLETE_REGISTRATION}"] .bar')
    history = browser.find_element(By.ID, "history-rows").text
    for label in ("saga started", "step failed", "compensation done", "saga failed"):
        assert label in history

    # The actions: a failed saga cannot be re-driven; it can be marked as needing attention.
    redrive = browser.find_element(By.ID, "action-redrive")
    mark = browser.find_element(By.ID, "action-attention")
    clear = browser.find_element(By.ID, "action-clear")
    assert (redrive.text, mark.text, clear.text) == ("Re-drive", "Mark needs attention", "Clear needs attention")
    assert not redrive.is_enabled()
    assert mark.is_enabled()
    assert not clear.is_enabled()
    browser.find_element(By.ID, "attention-note").send_keys("address service refused it; check the IBAN rules")
    mark.click()
    _text_of(browser, "#action-result", "Marked as needing attention.")
    entry = _text_of(browser, '#history-rows tr[data-event="attention_marked"]', operator)
    assert "marked needs attention" in entry
    assert "check the IBAN rules" in entry
    _text_of(browser, row, "needs attention")
    _wait(browser, lambda d: d.find_element(By.ID, "action-clear").is_enabled(), "Clear enabled")

    # Back to every saga for the picture: the list, the counts, the failed saga's timeline.
    browser.find_element(By.ID, "filters-reset").click()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#saga-rows tr[data-saga-id]")) > 1, "every saga again")
    browser.find_element(By.ID, "refresh-toggle").click()  # paused: the picture holds still
    assert browser.find_element(By.ID, "refresh-toggle").get_attribute("aria-pressed") == "true"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(max(int(height) + 120, 900), 2400))
    _shown(browser, timeline.format(f"compensation:{RegistrationStep.CREATE_PROFILE}", "compensation"))
    Path(SCREENSHOT).parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))

    # The operator clears the mark; that is in the history too. The access token has gone bad
    # meanwhile (as one does after 15 minutes): the page renews it with the refresh token.
    browser.execute_script("sessionStorage.setItem('console.access_token', 'expired')")
    browser.find_element(By.ID, "action-clear").click()
    _text_of(browser, "#action-result", "Needs attention cleared.")
    assert operator in _text_of(browser, '#history-rows tr[data-event="attention_cleared"]', "needs attention cleared")
    assert browser.execute_script("return sessionStorage.getItem('console.access_token')") != "expired"

    # Nothing the page did was refused by its Content-Security-Policy or failed in its script.
    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not [p for p in problems if "Content Security Policy" in p or "Uncaught" in p], problems


def test_a_retried_step_is_marked_on_its_timeline_and_a_saga_opens_from_its_address(
    system: Stack, client: httpx.Client, browser: WebDriver
) -> None:
    operator = unique_email("operator")
    wait_for_saga(client, system, _registered(client, system, operator)["saga"]["id"], "completed")
    _grant_operator(system, operator)
    # SMTP refusing connections: the welcome mail's step is retried until the mail server is back.
    system.stop("mail")
    try:
        saga_id = _registered(client, system, unique_email())["saga"]["id"]

        def retried() -> bool:
            welcome = next(s for s in saga_of(client, system, saga_id)["steps"] if s["step"] == "send_welcome_email")
            return welcome["attempts"] >= 2

        wait_until(retried, what="the welcome mail to be retried")
    finally:
        system.start("mail")
    wait_for_saga(client, system, saga_id, "completed")

    browser.get(system.url("gateway", f"/console/#saga={saga_id}"))
    _log_in(browser, operator)
    _text_of(browser, "#detail-title", saga_id)
    welcome = f'#timeline [data-row="step:{RegistrationStep.SEND_WELCOME_EMAIL}"]'
    _shown(browser, f"{welcome} .bar.done")
    assert browser.find_elements(By.CSS_SELECTOR, f"{welcome} .bar.retried")
    retry = browser.find_element(By.CSS_SELECTOR, f"{welcome} .mark.retry")
    assert retry.text == "↻"
    assert "attempt 1" in retry.get_attribute("aria-label")
    error = browser.find_element(By.CSS_SELECTOR, f'#timeline [data-row="step:{RegistrationStep.SEND_WELCOME_EMAIL}:error"]').text
    assert "attempt 1 retried" in error
    assert "step retried" in browser.find_element(By.ID, "history-rows").text
    # Over, nothing of it is drawn as still running or waiting.
    assert not browser.find_elements(By.CSS_SELECTOR, "#timeline .bar.running")
    # The saga is over: nothing to re-drive.
    assert not browser.find_element(By.ID, "action-redrive").is_enabled()


def test_an_operator_re_drives_a_saga_waiting_on_a_stopped_worker(system: Stack, client: httpx.Client, browser: WebDriver) -> None:
    operator = unique_email("operator")
    wait_for_saga(client, system, _registered(client, system, operator)["saga"]["id"], "completed")
    _grant_operator(system, operator)
    # No profile worker: the registration waits at its first step, running, not moving.
    system.stop("profile-worker")
    try:
        saga_id = _registered(client, system, unique_email())["saga"]["id"]
        browser.get(system.url("gateway", f"/console/#saga={saga_id}"))
        _log_in(browser, operator)
        _text_of(browser, "#detail-summary", "running")
        _shown(browser, f'#timeline [data-row="step:{RegistrationStep.CREATE_PROFILE}"] .bar.running')
        _wait(browser, lambda d: d.find_element(By.ID, "action-redrive").is_enabled(), "Re-drive enabled")
        browser.find_element(By.ID, "action-redrive").click()
        _text_of(browser, "#action-result", "Re-driven")
        entry = _text_of(browser, '#history-rows tr.operator[data-event="redriven"]', operator)
        assert "re-driven" in entry
    finally:
        system.start("profile-worker")
    # The worker back, the saga completes in front of the operator (the page refreshes itself).
    wait_for_saga(client, system, saga_id, "completed")
    _text_of(browser, "#detail-summary", "completed")
    _wait(browser, lambda d: not d.find_element(By.ID, "action-redrive").is_enabled(), "Re-drive disabled once it is over")
