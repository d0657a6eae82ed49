import pytest

from cases.models import CaseState, Severity


@pytest.mark.parametrize("state", list(CaseState.values))
def test_every_state_is_reachable(case_in_state, state):
    if state == CaseState.RISK_ACCEPTED:
        pytest.skip("walked in test_case_risk_acceptance")
    case = case_in_state(state, severity=Severity.HIGH)
    assert case.state == state
