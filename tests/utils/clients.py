"""One factory per client: each service's app in process, with its settings changed by ``overrides``.

Use as a context manager (``with users_client() as users:``): that runs the app's lifespan.
"""

from fastapi.testclient import TestClient

from emails_svc.config import get_settings as emails_settings
from emails_svc.main import create_app as emails_app
from profile_svc.config import get_settings as profile_settings
from profile_svc.main import create_app as profile_app
from users_svc.config import get_settings as users_settings
from users_svc.main import create_app as users_app

CHEAP_HASHES = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 8192}


def users_client(**overrides: object) -> TestClient:
    # No workers run in integration tests, so sagas never finish: don't wait for them.
    settings = users_settings().model_copy(update={"register_wait_seconds": 0.05, **CHEAP_HASHES, **overrides})
    return TestClient(users_app(settings), raise_server_exceptions=False)


def profile_client(**overrides: object) -> TestClient:
    return TestClient(profile_app(profile_settings().model_copy(update=overrides)), raise_server_exceptions=False)


def emails_client(**overrides: object) -> TestClient:
    return TestClient(emails_app(emails_settings().model_copy(update=overrides)), raise_server_exceptions=False)
