"""Organisations not involved in a referral get nothing from it; a stolen routing key opens no case file.

ong-lor-01 refers an adult in Lima needing a shelter and legal aid; the shelter accepts its offer. Then
organisations with no part in it call every RPC of both services on its real ids (tests/outsider_calls.py,
shared with tests/security/test_access.py): sal-lor-01 (a health provider), aud-lim-01 (an auditor: never a
key, never a handoff) and alb-pun-01 (a shelter, the role the consent names, but never offered this
referral). Every call is PERMISSION_DENIED (ListHandoffs, which is a
provider's own inbox, shows them nothing of it), and the referral is unchanged afterwards. Finally, with
the network routing key read from the network folder, as a thief would, the ReferralSubmitted envelope
read raw from Kafka gives up its routing facts but not its case file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.core.envelope import Opener, SectionKind, TamperedSectionError, UnknownKeyError
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import events_pb2
from services.core.identity.directory import Directory
from services.core.keyvault.keys import DataKey
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.messaging.topics import events_topic
from tests.e2e.support import (
    Partner,
    RawEvent,
    events_of,
    read_topic,
    wait_for,
)
from tests.outsider_calls import accepted_referral, assert_unchanged, call_everything_as_outsiders

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_uninvolved_organisations_are_denied_everything(partner: Callable[[str], Partner], directory: Directory,
                                                        network_dir: Path, kafka_bootstrap: str) -> None:
    referrer = partner("ong-lor-01")
    accepted = accepted_referral(partner, "ong-lor-01", case_file_number=401,
                                 exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_INFORMAL_MANUFACTURING)
    referral_id, subject_id, request = accepted.referral_id, accepted.subject_id, accepted.request

    refusals = call_everything_as_outsiders(partner, referral_id=referral_id, subject_id=subject_id,
                                            consent_id=accepted.consent_id, handoff_ids=accepted.handoff_ids)
    assert not refusals.failures, "calls by uninvolved organisations not denied:\n" + "\n".join(refusals.failures)
    assert_unchanged(referrer, accepted)  # nothing they tried changed anything

    # A stolen network routing key opens the routing facts of the raw envelope, not its case file.
    def submitted_events() -> list[RawEvent]:
        return events_of(read_topic(kafka_bootstrap, events_topic("intake"), directory), "ReferralSubmitted",
                         f"subject-{subject_id}")
    (event,) = wait_for(submitted_events, 30, "ReferralSubmitted on the intake topic", interval_s=0.5)
    stolen = load_routing_keys(network_dir)
    envelope, opener = event.envelope, Opener()
    routing = events_pb2.ReferralSubmitted.FromString(
        opener.open(envelope, SectionKind.ROUTING, stolen.key(envelope.section(SectionKind.ROUTING).key_id)))
    assert (routing.referral_id, routing.subject_id, routing.referrer_org, routing.region) == (
        referral_id, subject_id, "ong-lor-01", vocab.REGION_LIMA)
    case_section = envelope.section(SectionKind.CASE_FILE)
    assert case_section.key_id == routing.case_file_key_id and case_section.key_id not in stolen.key_ids
    with pytest.raises(UnknownKeyError):
        stolen.key(case_section.key_id)
    for key_id in stolen.key_ids:  # even passed off under the case-file key's id, a routing key opens nothing
        with pytest.raises(TamperedSectionError):
            opener.open(envelope, SectionKind.CASE_FILE, DataKey(case_section.key_id, stolen.key(key_id).key))
    for secret in (request.case_file.document_number, request.case_file.given_names, request.case_file.narrative):
        assert secret.encode() not in event.wire
