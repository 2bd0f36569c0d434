"""Shared pieces of intake's tests: a network, an intake on a migrated database, requests.

Test modules import the fixtures (``intake_fixture`` registers as ``intake``; ``intake_network_fixture`` and
``migrated_template_fixture`` as ``intake_network`` and ``migrated_template``).

What is real: the network folder made by ``init_network`` (CA, keys, signed directory, routing key), the
Alembic migrations, SQLite files (or PostgreSQL in the integration tier), the key vault with a file KEK,
the event store and envelopes. What is replaced: the clock (a settable one) and ReleaseKey's sleep (a
fake that advances the clock instead of waiting). People are synthetic ("Persona Sintética Uno").
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from services.core.database import create_engine
from services.core.envelope import Opener, SectionKind, Verifier, now_micros
from services.core.events.catalogues import INTAKE_EVENTS
from services.core.events.streams import subject_stream
from services.core.eventstore import EventStore, StoredEvent, unit_of_work
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import (
    ExploitationType,
    OrgRole,
    Region,
    ServiceType,
    Urgency,
)
from services.core.generated.referralnet.consent.v1.consent_pb2 import (
    ConsentGiver,
    ConsentGrant,
    ConsentRecipient,
    DataCategory,
    Purpose,
)
from services.core.generated.referralnet.intake.v1.intake_pb2 import CaseFile, Need, SubmitReferralRequest
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral_events
from services.core.grpcedge.caller import Caller
from services.core.identity.network import NetworkCreated, init_network
from services.core.keyvault import KeyVault
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.intake.adapters.database import migrate
from services.intake.adapters.messages import timestamp
from services.intake.adapters.referral_events import ReferralEvent
from services.intake.application.context import ReleaseWait
from services.intake.application.service import IntakeApplication
from services.intake.bootstrap import build_application

DAY_US = 24 * 3600 * 1_000_000
POLICE, NGO, PROSECUTOR = "pol-mdd-01", "ong-cus-01", "fis-lim-01"
SHELTER, OTHER_SHELTER, LEGAL = "alb-mdd-01", "alb-lim-01", "leg-lim-01"
CHILD_PROTECTION, COORDINATOR, AUDITOR = "pro-nna-01", "coo-lim-01", "aud-lim-01"
OTHER_POLICE = "pol-cus-01"


@pytest.fixture(scope="session", name="intake_network")
def intake_network_fixture(tmp_path_factory: pytest.TempPathFactory) -> NetworkCreated:
    """One ``network init`` network for the session (read only)."""
    return init_network(tmp_path_factory.mktemp("intake-network") / "network")


@pytest.fixture(scope="session", name="migrated_template")
def migrated_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once (core + intake branches); each test copies it."""
    path = tmp_path_factory.mktemp("intake-template") / "intake.db"
    engine = create_engine(f"sqlite+pysqlite:///{path}")
    migrate(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


class Clock:
    """A settable clock of Unix microseconds (starts at the real now, so validation sees realistic dates)."""

    def __init__(self) -> None:
        self.now = now_micros()

    def __call__(self) -> int:
        return self.now

    def advance(self, micros: int) -> None:
        self.now += micros


@dataclass
class FakeWait:
    """ReleaseKey's wait, without waiting: each sleep advances a fake monotonic clock and counts the polls."""

    max_seconds: float = 3.0
    deadline: float | None = None
    elapsed: float = 0.0
    polls: int = 0
    on_poll: list[object] = field(default_factory=list)  # callables run at each poll (e.g. the worker applying)

    def release_wait(self) -> ReleaseWait:
        return ReleaseWait(max_seconds=self.max_seconds, poll_seconds=0.05, deadline_remaining=lambda: self.deadline,
                           sleep=self._sleep, monotonic=lambda: self.elapsed)

    def _sleep(self, seconds: float) -> None:
        self.elapsed += seconds
        self.polls += 1
        for action in self.on_poll:
            action()  # type: ignore[operator]


@dataclass
class Intake:
    """An intake application on its own database, with the pieces tests inspect."""

    app: IntakeApplication
    engine: sa.Engine
    network: NetworkCreated
    clock: Clock
    wait: FakeWait
    commits: list[int]

    @property
    def root(self) -> Path:
        return self.network.layout.root

    @property
    def vault(self) -> KeyVault:
        return self.app.context.vault

    @property
    def store(self) -> EventStore:
        return self.app.context.events

    @property
    def routing_keys(self) -> NetworkRoutingKeys:
        return self.app.context.routing_keys

    def caller(self, org_id: str, language: str = "es") -> Caller:
        return Caller(org_id, self.network.directory.org(org_id).role, language)

    def stream(self, subject_id: str) -> list[StoredEvent]:
        with Session(self.engine) as session:
            return self.store.load(session, subject_stream(subject_id))

    def payloads(self, subject_id: str) -> list[Message]:
        """Every event of the subject's stream, verified and its routing section decoded."""
        verifier, opener = Verifier(self.network.directory, workers=1), Opener()
        decoded = []
        for stored in self.stream(subject_id):
            envelope = verifier.verify(stored.envelope)
            header = envelope.header
            plain = opener.open(envelope, SectionKind.ROUTING, self.routing_keys.key(envelope.section(
                SectionKind.ROUTING).key_id))
            decoded.append(INTAKE_EVENTS.decode(header.event_type, header.schema_version, plain))
        verifier.close()
        return decoded

    def apply(self, message: Message, sequence: int, *, stream_id: str | None = None) -> bool:
        """Apply a referral event as the worker would (in its own transaction)."""
        event = ReferralEvent(event_id=f"evt-{sequence}", event_type=message.DESCRIPTOR.name,
                              stream_id=stream_id or f"referral-{getattr(message, 'referral_id', 'x')}",
                              stream_sequence=sequence, occurred_at_micros=self.clock(), message=message)
        with unit_of_work(self.engine) as session:
            return self.app.apply_referral_event(session, event)

    def table_rows(self, table: sa.Table) -> list[sa.Row[object]]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(table)))


def make_intake(network: NetworkCreated, engine: sa.Engine, kek_path: Path, wait: FakeWait | None = None) -> Intake:
    """An intake over ``engine`` (already migrated) with a settable clock and a fake release wait."""
    clock, wait, commits = Clock(), wait or FakeWait(), []
    app = build_application(engine, network.layout.root, kek_path, directory=network.directory,
                            after_commit=lambda: commits.append(1), clock=clock, release_wait=wait.release_wait())
    return Intake(app, engine, network, clock, wait, commits)


@pytest.fixture(name="intake")
def intake_fixture(intake_network: NetworkCreated, migrated_template: Path, tmp_path: Path) -> Iterator[Intake]:
    """An intake on a fresh copy of the migrated SQLite database, with its own KEK file."""
    path = tmp_path / "intake.db"
    shutil.copyfile(migrated_template, path)
    engine = create_engine(f"sqlite+pysqlite:///{path}")
    made = make_intake(intake_network, engine, tmp_path / "kek.key")
    yield made
    engine.dispose()


# -- requests -------------------------------------------------------------------------------------------------

def case_file(number: int = 1) -> CaseFile:
    """A synthetic person's case file."""
    return CaseFile(given_names=f"Persona Sintética {number}", family_names="Ficticia Ejemplo",
                    date_of_birth="1990-01-01", document_type="DNI", document_number=f"SINT-{number:04d}",
                    nationality="PE", languages=["es", "qu"], narrative="Relato sintético de prueba.",
                    safe_contact="A través de la unidad policial sintética.")


def grant(*, role: OrgRole | None = None, org: str | None = None,
          purposes: Sequence[Purpose] = (Purpose.PURPOSE_SERVICE_DELIVERY,),
          categories: Sequence[DataCategory] = (DataCategory.DATA_CATEGORY_ROUTING,
                                                DataCategory.DATA_CATEGORY_CASE_FILE),
          given_by: ConsentGiver = ConsentGiver.CONSENT_GIVER_SUBJECT, expires_at: int | None = None) -> ConsentGrant:
    """A consent grant to a role (shelters by default) or one org, expiring in 180 days unless told."""
    recipient = ConsentRecipient(org_id=org) if org else ConsentRecipient(role=role or OrgRole.ORG_ROLE_SHELTER)
    expires = expires_at if expires_at is not None else (now_micros() // DAY_US + 180) * DAY_US  # same all day
    return ConsentGrant(recipient=recipient, purposes=purposes, categories=categories, given_by=given_by,
                        expires_at=timestamp(expires))


def submission(key: str = "idem-key-0000000001", *, minor: bool = False, subject_id: str = "",
               consents: Sequence[ConsentGrant] | None = None, number: int = 1) -> SubmitReferralRequest:
    """An adult victim of forced labour in mining in Madre de Dios needing shelter and legal aid."""
    return SubmitReferralRequest(
        idempotency_key=key, subject_id=subject_id, case_file=case_file(number),
        needs=[Need(service_type=ServiceType.SERVICE_TYPE_SHELTER, urgency=Urgency.URGENCY_IMMEDIATE),
               Need(service_type=ServiceType.SERVICE_TYPE_LEGAL_AID, urgency=Urgency.URGENCY_PRIORITY)],
        region=Region.REGION_MADRE_DE_DIOS, minor=minor,
        exploitation_type=ExploitationType.EXPLOITATION_TYPE_FORCED_LABOUR_MINING,
        consents=[grant()] if consents is None else consents)


def handoff_event(kind: str, subject_id: str, provider: str, handoff_id: str = "hof-1",
                  referral_id: str = "ref-1") -> Message:
    """A referral event about one handoff (``HandoffAccepted``, ``ServiceStarted``...)."""
    message_class: type[Message] = getattr(referral_events, kind)
    return message_class(handoff_id=handoff_id, referral_id=referral_id, subject_id=subject_id,
                         provider_org=provider)


def wall_seconds(function: object) -> float:
    """How long calling ``function()`` takes (for asserting a wait was not real)."""
    started = time.monotonic()
    function()  # type: ignore[operator]
    return time.monotonic() - started
