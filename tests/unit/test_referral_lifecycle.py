"""The handoff lifecycle (like FHIR Task) and the Referral aggregate's needs, without any I/O.

What is real: the domain objects. Nothing is replaced (there is nothing to replace: the domain is pure).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from services.core.application import ErrorCode, FailedPrecondition
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.referral.v1 import referral_pb2 as api
from services.referral.domain.handoff import LEGAL_MOVES, Handoff, HandoffState, move
from services.referral.domain.referral import NeedState, Referral

S = HandoffState
LEGAL = {
    (S.OFFERED, S.ACCEPTED), (S.OFFERED, S.DECLINED), (S.OFFERED, S.EXPIRED), (S.OFFERED, S.WITHDRAWN),
    (S.ACCEPTED, S.IN_SERVICE), (S.ACCEPTED, S.WITHDRAWN),
    (S.IN_SERVICE, S.COMPLETED), (S.IN_SERVICE, S.WITHDRAWN),
}
ALL_PAIRS = list(itertools.product(S, S))
STATE_WORDS = {S.OFFERED: ("ofrecida", "offered"), S.ACCEPTED: ("aceptada", "accepted"),
               S.DECLINED: ("rechazada", "declined"), S.EXPIRED: ("vencida", "expired"),
               S.WITHDRAWN: ("retirada", "withdrawn"), S.IN_SERVICE: ("en servicio", "in service"),
               S.COMPLETED: ("completada", "completed")}
OFFERED_AT, DEADLINE = 1_000, 5_000


def test_the_table_is_exactly_the_documented_lifecycle():
    assert {(current, target) for current, targets in LEGAL_MOVES.items() for target in targets} == LEGAL
    assert set(LEGAL_MOVES) == set(S)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_every_legal_move_is_allowed(current, target):
    assert move(current, target) is target


@pytest.mark.parametrize(("current", "target"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_every_illegal_move_fails_naming_the_current_state_in_both_languages(current, target):
    with pytest.raises(FailedPrecondition) as caught:
        move(current, target)
    error = caught.value
    assert error.code is ErrorCode.FAILED_PRECONDITION
    state_es, state_en = STATE_WORDS[current]
    assert state_es in error.message("es") and state_en in error.message("en")
    assert error.message("es") != error.message("en")


def handoff_in(state: HandoffState) -> Handoff:
    """A handoff brought to ``state`` through legal moves only."""
    handoff = Handoff("hof-" + "0" * 32, 0, "alb-mdd-01", "con-1", 1, OFFERED_AT, DEADLINE)
    path = {S.OFFERED: [], S.ACCEPTED: [S.ACCEPTED], S.IN_SERVICE: [S.ACCEPTED, S.IN_SERVICE],
            S.COMPLETED: [S.ACCEPTED, S.IN_SERVICE, S.COMPLETED], S.DECLINED: [S.DECLINED],
            S.EXPIRED: [S.EXPIRED], S.WITHDRAWN: [S.WITHDRAWN]}[state]
    actions = {S.ACCEPTED: lambda: handoff.accept(2_000), S.IN_SERVICE: lambda: handoff.start(3_000),
               S.COMPLETED: lambda: handoff.complete(api.SERVICE_OUTCOME_COMPLETED_AS_PLANNED, "", 4_000),
               S.DECLINED: lambda: handoff.decline(api.DECLINE_REASON_NO_CAPACITY, "sin cupo", 2_000),
               S.EXPIRED: lambda: handoff.expire(DEADLINE), S.WITHDRAWN: lambda: handoff.withdraw(
                   api.WITHDRAW_REASON_NO_LONGER_NEEDED, "", 2_000)}
    for step in path:
        actions[step]()
    assert handoff.state is state
    return handoff


@pytest.mark.parametrize("state", list(S))
def test_each_command_of_the_handoff_obeys_the_table(state):
    commands: dict[HandoffState, Callable[[Handoff], None]] = {
        S.ACCEPTED: lambda h: h.accept(OFFERED_AT + 1),
        S.DECLINED: lambda h: h.decline(api.DECLINE_REASON_OTHER, "", OFFERED_AT + 1),
        S.EXPIRED: lambda h: h.expire(DEADLINE),
        S.WITHDRAWN: lambda h: h.withdraw(api.WITHDRAW_REASON_OTHER, "", OFFERED_AT + 1),
        S.IN_SERVICE: lambda h: h.start(OFFERED_AT + 1),
        S.COMPLETED: lambda h: h.complete(api.SERVICE_OUTCOME_OTHER, "", OFFERED_AT + 1),
    }
    for target, command in commands.items():
        handoff = handoff_in(state)
        if target in LEGAL_MOVES[state]:
            command(handoff)
            assert handoff.state is target and handoff.updated_at >= OFFERED_AT
        else:
            with pytest.raises(FailedPrecondition):
                command(handoff)
            assert handoff.state is state  # a refused move changes nothing


def test_an_offer_past_its_deadline_cannot_be_accepted_even_before_the_timer_expired_it():
    handoff = handoff_in(S.OFFERED)
    with pytest.raises(FailedPrecondition) as caught:
        handoff.accept(DEADLINE)
    assert "expired" in caught.value.message("en") and "vencida" in caught.value.message("es")
    assert handoff.state is S.OFFERED and handoff.is_due(DEADLINE) and not handoff.is_due(DEADLINE - 1)


def test_accepting_an_expired_offer_and_completing_a_declined_one_name_their_states():
    with pytest.raises(FailedPrecondition, match="Cannot accept a handoff that is expired"):
        handoff_in(S.EXPIRED).accept(OFFERED_AT + 1)
    with pytest.raises(FailedPrecondition, match="Cannot complete a handoff that is declined"):
        handoff_in(S.DECLINED).complete(api.SERVICE_OUTCOME_OTHER, "", OFFERED_AT + 1)


def referral(needs: int = 2) -> Referral:
    services = [vocab.SERVICE_TYPE_SHELTER, vocab.SERVICE_TYPE_LEGAL_AID, vocab.SERVICE_TYPE_PSYCHOSOCIAL][:needs]
    return Referral.open(referral_id="ref-" + "1" * 32, subject_id="sub-" + "2" * 32, referrer_org="pol-mdd-01",
                         needs=[(service, vocab.URGENCY_ROUTINE) for service in services],
                         region=vocab.REGION_MADRE_DE_DIOS, minor=False,
                         exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING, submitted_at=10,
                         submission_event_id="e", now=10)


def offer(made: Referral, need: int, org: str, now: int = 20) -> str:
    handoff_id = f"hof-{need}{len(made.handoffs):031d}"
    made.offer(need, handoff_id=handoff_id, provider_org=org, consent_id="con-1", now=now, expires_at=now + 100)
    return handoff_id


def test_a_need_follows_its_handoff_and_waits_for_routing_after_a_decline_or_expiry():
    made = referral()

    def states() -> list[NeedState]:
        return [need.state for need in made.needs]

    assert states() == [NeedState.UNROUTED] * 2
    first = offer(made, 0, "alb-mdd-01")
    assert states() == [NeedState.OFFERED, NeedState.UNROUTED]
    made.decline(first, api.DECLINE_REASON_NO_CAPACITY, "", 30)
    assert states()[0] is NeedState.UNROUTED and made.offered_orgs(0) == {"alb-mdd-01"}
    second = offer(made, 0, "alb-cus-01", 40)
    assert made.handoff(second).attempt == 2
    made.expire(second, 140)
    assert made.unrouted() == made.needs  # need 1 was never offered
    made.escalate(0, 150)
    assert states()[0] is NeedState.ESCALATED
    third = offer(made, 0, "alb-lim-01", 160)  # an escalated need can be offered again
    assert made.handoff(third).attempt == 3 and states()[0] is NeedState.OFFERED


def test_the_referral_closes_only_when_every_need_is_completed_or_withdrawn():
    made = referral()
    shelter, legal = offer(made, 0, "alb-mdd-01"), offer(made, 1, "leg-aqp-01")
    made.accept(shelter, 30)
    made.start(shelter, 40)
    made.complete(shelter, api.SERVICE_OUTCOME_COMPLETED_AS_PLANNED, "", 50)
    assert not made.closed
    made.withdraw(legal, api.WITHDRAW_REASON_NO_LONGER_NEEDED, "", "pol-mdd-01", 60)
    assert made.closed and made.closed_at == 60
    assert [type(event).__name__ for event in made.pending] == [
        "ReferralOpened", "HandoffOffered", "HandoffOffered", "HandoffAccepted", "ServiceStarted",
        "ServiceCompleted", "HandoffWithdrawn", "ReferralClosed"]


def test_a_withdrawal_because_consent_was_revoked_leaves_the_need_to_be_routed_again():
    made = referral(1)
    handoff_id = offer(made, 0, "alb-mdd-01")
    made.withdraw(handoff_id, api.WITHDRAW_REASON_CONSENT_REVOKED, "", "pol-mdd-01", 30)
    assert made.needs[0].state is NeedState.UNROUTED and not made.closed


def test_an_escalated_need_keeps_the_referral_open_and_a_need_with_an_offer_cannot_be_escalated():
    made = referral(1)
    made.escalate(0, 20)
    assert not made.closed
    offer(made, 0, "alb-mdd-01")
    with pytest.raises(ValueError, match="not unrouted"):
        made.escalate(0, 30)
    with pytest.raises(ValueError, match="not waiting for an offer"):
        offer(made, 0, "alb-cus-01")
