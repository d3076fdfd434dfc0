"""Least privilege on the test stack, set up as production is: a PostgreSQL role per service that
is no superuser and reaches only its own database, and a Redis that asks for its password."""

import psycopg2
import pytest
import redis

from tests.stack import SERVICES, Stack

OTHERS = [(service, other) for service in SERVICES for other in SERVICES if other != service]


def _url(stack: Stack, service: str, database: str) -> str:
    url = stack.config.database_url(service).replace("postgresql+psycopg2://", "postgresql://")
    return url.rsplit("/", 1)[0] + f"/{database}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_connects_as_its_own_role_which_is_no_superuser_and_owns_its_tables(infra: Stack, service: str) -> None:
    [(role, superuser, create_db, create_role)] = infra.query(
        service, "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    )
    assert (role, superuser, create_db, create_role) == (f"{service}_svc", False, False, False)
    owners = infra.query(service, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [(role,)]  # its migrations ran as itself, and can run again


@pytest.mark.parametrize(("service", "other"), OTHERS)
def test_a_service_role_cannot_connect_to_another_services_database(infra: Stack, service: str, other: str) -> None:
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        psycopg2.connect(_url(infra, service, other))


def test_redis_refuses_a_client_without_the_password(infra: Stack) -> None:
    assert infra.redis().ping()  # the services' URL carries it
    anonymous = redis.Redis(host="127.0.0.1", port=infra.config.redis_port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(host="127.0.0.1", port=infra.config.redis_port, password="guessed")
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
