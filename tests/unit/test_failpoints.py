import pytest

from saga import InjectedFault, RegistrationStep, failpoint


def test_failpoints_are_off_unless_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGA_FAILPOINTS", raising=False)
    failpoint(RegistrationStep.CREATE_PROFILE, "fail-create_profile@example.com")


def test_a_failpoint_fails_only_its_own_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_FAILPOINTS", "on")
    with pytest.raises(InjectedFault):
        failpoint(RegistrationStep.RECORD_ADDRESS, "Fail-Record_Address+1@example.com")
    failpoint(RegistrationStep.CREATE_PROFILE, "fail-record_address@example.com")
    failpoint(RegistrationStep.CREATE_PROFILE, "someone@fail-create_profile.example")
