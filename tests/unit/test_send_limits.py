import pytest
from pydantic import ValidationError

from emails_svc.config import Settings
from emails_svc.throttle import parse_rates


def test_send_limits_are_read_in_the_limits_notation_and_empty_means_none() -> None:
    assert [str(rate) for rate in parse_rates("20/minute;200/hour")] == ["20 per 1 minute", "200 per 1 hour"]
    assert parse_rates("") == []
    settings = Settings(database_url="-", broker_url="-", send_rate_per_recipient="")
    assert (settings.send_rate_per_address, settings.send_rate_per_recipient) == ("20/minute;200/hour", "")


def test_a_send_limit_that_does_not_parse_stops_the_service_with_why() -> None:
    with pytest.raises(ValidationError, match="not a rate in the limits notation"):
        Settings(database_url="-", broker_url="-", send_rate_per_address="lots")
