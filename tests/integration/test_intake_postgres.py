"""Intake's application on PostgreSQL: idempotency under concurrency, concurrent consents, a release, an erasure
racing key releases.

What is real: PostgreSQL (a schema of its own per test, migrated by intake's branch), a ``network init``
network, the key vault, the event store and HPKE. What is replaced: the clock and the release wait's sleep.
On PostgreSQL the losers of a race on one idempotency key wait at the primary key for the winner's
transaction and then fail, which is the path SQLite (one writer at a time) exercises differently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.core.application import FailedPrecondition, Unavailable
from services.core.eventstore.schema import events
from services.core.generated.referralnet.consent.v1.consent_pb2 import DataCategory, Purpose
from services.core.generated.referralnet.intake.v1.intake_pb2 import (
    EraseSubjectRequest,
    RecordConsentRequest,
    ReleaseKeyRequest,
)
from services.core.identity.keystore import load_org_kem_key
from services.core.identity.network import NetworkCreated
from services.core.keyvault.store import subjects as vault_subjects
from services.intake.adapters.database import migrate
from services.intake.adapters.tables import subjects, submissions
from services.intake.client_support import open_case_files
from tests.integration.database_backends import fresh_engine
from tests.unit.intake_support import (  # noqa: F401 -- fixtures
    LEGAL,
    POLICE,
    SHELTER,
    Intake,
    case_file,
    grant,
    handoff_event,
    intake_network_fixture,
    make_intake,
    submission,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_intake(request: pytest.FixtureRequest, intake_network: NetworkCreated, tmp_path: Path) -> Iterator[Intake]:
    with fresh_engine(request, "postgresql") as engine:
        migrate(engine)
        yield make_intake(intake_network, engine, tmp_path / "kek.key")


def test_twenty_concurrent_submissions_with_one_key_make_one_referral_on_postgresql(pg_intake, monkeypatch):
    intake = pg_intake
    barrier, ensure = threading.Barrier(20), intake.vault.ensure_subject

    def ensure_together(subject_id: str) -> None:  # all twenty are past the first look-up before any commits
        barrier.wait(timeout=30)
        ensure(subject_id)

    monkeypatch.setattr(intake.vault, "ensure_subject", ensure_together)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: intake.app.submit_referral(intake.caller(POLICE), submission()), range(20)))

    assert len({(a.referral_id, a.subject_id) for a in answers}) == 1
    assert sorted(a.replayed for a in answers) == [False] + [True] * 19
    with intake.engine.connect() as connection:
        kinds = connection.execute(sa.select(events.c.event_type)).scalars().all()
        vault_rows = connection.execute(sa.select(vault_subjects.c.subject_id, vault_subjects.c.shredded_at)).all()
        counts = [connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in (submissions, subjects)]
    assert sorted(kinds) == ["ConsentRecorded", "ReferralSubmitted"] and counts == [1, 1]
    assert len(vault_rows) == 20
    assert [row.subject_id for row in vault_rows if row.shredded_at is None] == [answers[0].subject_id]


def test_concurrent_consents_on_postgresql_land_in_one_gap_free_stream(pg_intake):
    intake = pg_intake
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())

    def record(index: int) -> str:
        request = RecordConsentRequest(subject_id=answer.subject_id, grant=grant(org=[LEGAL, SHELTER][index % 2]))
        return str(intake.app.record_consent(intake.caller(POLICE), request).consent.consent_id)

    with ThreadPoolExecutor(6) as pool:
        recorded = list(pool.map(record, range(6)))

    assert [event.stream_sequence for event in intake.stream(answer.subject_id)] == list(range(1, 9))
    assert {payload.consent_id for payload in intake.payloads(answer.subject_id)[2:]} == set(recorded)


def test_a_release_on_postgresql_opens_client_side(pg_intake):
    intake = pg_intake
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    intake.apply(handoff_event("HandoffAccepted", answer.subject_id, SHELTER), 1)
    response = intake.app.release_key(intake.caller(SHELTER), ReleaseKeyRequest(
        subject_id=answer.subject_id, purpose=Purpose.PURPOSE_SERVICE_DELIVERY,
        category=DataCategory.DATA_CATEGORY_CASE_FILE))
    files = open_case_files(response, SHELTER, f"{SHELTER}#kem-1", load_org_kem_key(intake.root, SHELTER),
                            intake.network.directory)
    assert files == [case_file()]
    assert [event.event_type for event in intake.stream(answer.subject_id)][-1] == "KeyReleased"


def test_an_erasure_racing_key_releases_on_postgresql_leaves_no_release_after_it(pg_intake):
    intake = pg_intake
    answer = intake.app.submit_referral(intake.caller(POLICE), submission())
    subject_id = answer.subject_id
    intake.apply(handoff_event("HandoffOffered", subject_id, SHELTER, referral_id=answer.referral_id), 1)
    intake.apply(handoff_event("HandoffAccepted", subject_id, SHELTER, referral_id=answer.referral_id), 2)
    barrier = threading.Barrier(9)
    request = ReleaseKeyRequest(subject_id=subject_id, purpose=Purpose.PURPOSE_SERVICE_DELIVERY,
                                category=DataCategory.DATA_CATEGORY_CASE_FILE)

    def release(_: int) -> str:
        barrier.wait(timeout=30)
        try:
            intake.app.release_key(intake.caller(SHELTER), request)
        except (FailedPrecondition, Unavailable):  # erased by then, or too many writers at once
            return "refused"
        return "released"

    def erase() -> None:
        barrier.wait(timeout=30)
        intake.app.erase_subject(intake.caller(POLICE), EraseSubjectRequest(subject_id=subject_id))

    with ThreadPoolExecutor(9) as pool:
        releases = [pool.submit(release, index) for index in range(8)]
        erasure = pool.submit(erase)
        outcomes = [future.result(timeout=60) for future in releases]
        erasure.result(timeout=60)

    names = [payload.DESCRIPTOR.name for payload in intake.payloads(subject_id)]
    assert names.count("SubjectErased") == 1
    assert "KeyReleased" not in names[names.index("SubjectErased"):]
    assert names.count("KeyReleased") == outcomes.count("released")
    with pytest.raises(FailedPrecondition):
        intake.app.release_key(intake.caller(SHELTER), request)
