"""SubmitReferral on a SQLite file whose write lock another connection holds (seen under load in bench.e2e).

What is real: the migrated SQLite file, a second connection holding its write lock (``BEGIN IMMEDIATE``), the
busy timeout running out ("database is locked"), the key vault and event store. What is replaced: the busy
timeout (50 ms instead of 5 s, so a held lock fails fast) and the backoff's sleep (it releases the lock or
just counts), so nothing depends on timing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.core import database
from services.core.application import Unavailable
from services.core.grpcedge.interceptor import STATUS_OF
from services.core.keyvault.store import subjects as vault_subjects
from services.intake.adapters.tables import submissions
from tests.unit.intake_support import (  # noqa: F401 -- fixtures
    POLICE,
    Intake,
    intake_fixture,
    intake_network_fixture,
    migrated_template_fixture,
    submission,
    wall_seconds,
)


class WriteLock:
    """Another connection holding the file's write lock, as a writer of another thread or process would."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def close(self) -> None:
        self.release()
        self.connection.close()


@pytest.fixture(name="short_lock_wait")
def short_lock_wait_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections made from now on wait 50 ms for a lock (not the production busy timeout)."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)


@pytest.fixture(name="busy_intake")
def busy_intake_fixture(short_lock_wait: None, intake: Intake) -> Intake:
    """An intake whose connections wait 50 ms for a lock, on a fresh copy of the migrated file."""
    del short_lock_wait  # made first, so the intake's engine waits 50 ms
    return intake


@pytest.fixture(name="write_lock")
def write_lock_fixture(busy_intake: Intake) -> Iterator[WriteLock]:
    """The write lock of ``busy_intake``'s file, held from the start of the test (released at its end)."""
    assert busy_intake.engine.url.database is not None
    lock = WriteLock(Path(busy_intake.engine.url.database))
    yield lock
    lock.close()


def test_a_submission_whose_new_keys_find_the_file_locked_succeeds_once_the_lock_is_released(
        busy_intake, write_lock, caplog):
    """The vault's write (a new subject's keys) ran outside every retry: "database is locked" was INTERNAL."""
    pauses: list[float] = []

    def other_writer_commits(seconds: float) -> None:
        pauses.append(seconds)
        write_lock.release()

    busy_intake.app.context.sleep = other_writer_commits
    answer = busy_intake.app.submit_referral(busy_intake.caller(POLICE), submission())

    assert len(pauses) == 1, "one locked attempt, then the lock was gone"
    assert f"keys of subject {answer.subject_id}: OperationalError from the database (attempt 1)" in caplog.text
    assert [e.event_type for e in busy_intake.stream(answer.subject_id)] == ["ConsentRecorded", "ReferralSubmitted"]
    assert len(busy_intake.table_rows(submissions)) == 1


def test_a_lock_held_past_every_attempt_is_unavailable_not_internal_and_keeps_nothing(busy_intake, write_lock):
    pauses: list[float] = []
    busy_intake.app.context.sleep = pauses.append
    busy_intake.app.context.append_attempts = 3

    def submit() -> None:
        with pytest.raises(Unavailable) as unavailable:
            busy_intake.app.submit_referral(busy_intake.caller(POLICE), submission())
        assert STATUS_OF[unavailable.value.code] == grpc.StatusCode.UNAVAILABLE
        assert "retry" in unavailable.value.message("en")

    assert wall_seconds(submit) < 3.0  # three 50 ms lock waits, no real backoff: bounded
    assert len(pauses) == 2  # between the three attempts, none after the last
    write_lock.release()
    assert busy_intake.table_rows(submissions) == [] and busy_intake.table_rows(vault_subjects) == []
