"""The domain speaks the contracts' words: its codes convert to the events' enums by value."""

from __future__ import annotations

from contracts.events.returns import ReturnReasonCode, ReturnRejectionCode
from services.returns.domain import RejectionCode, ReturnReason


def test_return_reasons_are_the_contract_reason_codes() -> None:
    assert {reason.value for reason in ReturnReason} == {code.value for code in ReturnReasonCode}


def test_rejection_codes_are_the_contract_rejection_codes() -> None:
    assert {code.value for code in RejectionCode} == {code.value for code in ReturnRejectionCode}
