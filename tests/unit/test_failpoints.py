import pytest

from saga import InjectedFault, Step, failpoint


def test_failpoints_are_off_unless_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGA_FAILPOINTS", raising=False)
    failpoint(Step.CREATE_PROFILE, "fail-create_profile@example.com")


def test_a_failpoint_fails_only_its_own_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_FAILPOINTS", "on")
    with pytest.raises(InjectedFault):
        failpoint(Step.RECORD_ADDRESS, "Fail-Record_Address+1@example.com")
    failpoint(Step.CREATE_PROFILE, "fail-record_address@example.com")
    failpoint(Step.CREATE_PROFILE, "someone@fail-create_profile.example")
