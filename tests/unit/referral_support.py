"""Builders shared by the referral tests: intake's events as intake would send them, callers, and reading back
the referral service's own events (verified with the directory, opened with the network routing key).

Everything is synthetic: pseudonymous ids, seed organisations, no personal data anywhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uuid6
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.orm import Session

from services.core.envelope import EnvelopeSigner, EventHeader, Opener, Sealer, SectionKind, Verifier, new_event_id
from services.core.events.catalogues import INTAKE_EVENTS, REFERRAL_EVENTS
from services.core.events.streams import subject_stream
from services.core.eventstore import EventStore, NewEvent, unit_of_work
from services.core.eventstore.schema import events as events_table
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import events_pb2 as intake
from services.core.generated.referralnet.intake.v1 import intake_pb2
from services.core.grpcedge.caller import Caller
from services.core.identity.directory import Directory
from services.core.identity.keystore import load_service_signing_key
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.routing_keys import NetworkRoutingKeys, load_routing_keys
from services.core.messaging.topics import events_topic
from services.referral.application.app import ReferralApplication

HOUR_US = 3600 * 1_000_000
START_US = 1_800_000_000_000_000  # 2027-01-15, a fixed instant for injected clocks
YEAR_US = 365 * 24 * HOUR_US
INTAKE = service_owner("intake")
PROVIDER_ROLES: tuple[vocab.OrgRole, ...] = (
    vocab.ORG_ROLE_SHELTER, vocab.ORG_ROLE_LEGAL, vocab.ORG_ROLE_PSYCHOSOCIAL, vocab.ORG_ROLE_HEALTH,
    vocab.ORG_ROLE_CHILD_PROTECTION, vocab.ORG_ROLE_NGO)
NeedSpec = tuple[vocab.ServiceType, vocab.Urgency]
ADULT_NEEDS: tuple[NeedSpec, ...] = ((vocab.SERVICE_TYPE_SHELTER, vocab.URGENCY_IMMEDIATE),
                                     (vocab.SERVICE_TYPE_LEGAL_AID, vocab.URGENCY_PRIORITY),
                                     (vocab.SERVICE_TYPE_PSYCHOSOCIAL, vocab.URGENCY_ROUTINE))
Consent = intake.ConsentRecorded | intake.ConsentOverrideRecorded


def _id(prefix: str) -> str:
    return prefix + uuid6.uuid7().hex


def new_subject_id() -> str:
    return _id("sub-")


def new_referral_id() -> str:
    return _id("ref-")


def new_consent_id() -> str:
    return _id("con-")


class Clock:
    """An injected clock (Unix microseconds) that only moves when told to."""

    def __init__(self, now: int = START_US) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, micros: int) -> int:
        self.now += micros
        return self.now


def caller(directory: Directory, org_id: str, language: str = "es") -> Caller:
    """The Caller the edge would bind for ``org_id`` (its role from the directory)."""
    return Caller(org_id, directory.org(org_id).role, language)


def timestamp(unix_micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(unix_micros)
    return stamp


@dataclass
class SubjectFeed:
    """One subject's intake events, in stream order, as intake produces them (header + routing payload)."""

    subject_id: str = field(default_factory=new_subject_id)
    clock: Clock = field(default_factory=Clock)
    producer: str = INTAKE
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def header(self, message: Message, *, stream_id: str | None = None) -> EventHeader:
        return EventHeader(event_id=new_event_id(), event_type=message.DESCRIPTOR.name, schema_version=1,
                           stream_id=stream_id or subject_stream(self.subject_id), stream_sequence=next(self._sequence),
                           occurred_at_unix_micros=self.clock(), producer_org=self.producer,
                           producer_service=self.producer.removeprefix("svc:"),
                           signing_key_id=signing_key_id(self.producer))

    def consent(self, *, role: vocab.OrgRole = vocab.ORG_ROLE_UNSPECIFIED, org_id: str = "",
                purposes: Sequence[consent.Purpose] = (consent.PURPOSE_SERVICE_DELIVERY,),
                categories: Sequence[consent.DataCategory] = (consent.DATA_CATEGORY_ROUTING,
                                                              consent.DATA_CATEGORY_CASE_FILE),
                expires_at: int | None = None, override: bool = False,
                given_by: consent.ConsentGiver = consent.CONSENT_GIVER_SUBJECT) -> tuple[EventHeader, Consent]:
        recipient = consent.ConsentRecipient(org_id=org_id) if org_id else consent.ConsentRecipient(role=role)
        grant = consent.ConsentGrant(recipient=recipient, purposes=purposes, categories=categories, given_by=given_by,
                                     expires_at=timestamp(expires_at or self.clock() + YEAR_US))
        kind = intake.ConsentOverrideRecorded if override else intake.ConsentRecorded
        message = kind(consent_id=new_consent_id(), subject_id=self.subject_id, grant=grant,
                       recorded_by_org="pol-mdd-01", recorded_at_unix_micros=self.clock())
        return self.header(message), message

    def provider_consents(self, roles: Iterable[vocab.OrgRole] = PROVIDER_ROLES) -> list[tuple[EventHeader, Consent]]:
        """One consent per provider role (service delivery, routing and case file), as a referral brings them."""
        return [self.consent(role=role) for role in roles]

    def revoke(self, consent_id: str, by: str = "pol-mdd-01") -> tuple[EventHeader, intake.ConsentRevoked]:
        message = intake.ConsentRevoked(consent_id=consent_id, subject_id=self.subject_id, revoked_by_org=by,
                                        revoked_at_unix_micros=self.clock())
        return self.header(message), message

    def submission(self, *, referral_id: str | None = None, needs: Sequence[NeedSpec] = ADULT_NEEDS,
                   region: vocab.Region = vocab.REGION_MADRE_DE_DIOS, minor: bool = False,
                   referrer: str = "pol-mdd-01",
                   exploitation: vocab.ExploitationType = vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING,
                   consent_ids: Sequence[str] = ()) -> tuple[EventHeader, intake.ReferralSubmitted]:
        message = intake.ReferralSubmitted(
            referral_id=referral_id or new_referral_id(), subject_id=self.subject_id, referrer_org=referrer,
            needs=[intake_pb2.Need(service_type=service, urgency=urgency) for service, urgency in needs],
            region=region, minor=minor, exploitation_type=exploitation,
            submitted_at_unix_micros=self.clock(), consent_ids=consent_ids, case_file_key_id="dk-synthetic-0001")
        return self.header(message), message

    def key_released(self, org_id: str) -> tuple[EventHeader, intake.KeyReleased]:
        message = intake.KeyReleased(release_id=_id("rel-"), subject_id=self.subject_id, key_id="dk-synthetic-0001",
                                     category=consent.DATA_CATEGORY_CASE_FILE, purpose=consent.PURPOSE_SERVICE_DELIVERY,
                                     recipient_org=org_id, recipient_kem_key_id=f"{org_id}#kem-1",
                                     consent_id=new_consent_id(), handoff_id=_id("hof-"),
                                     released_at_unix_micros=self.clock())
        return self.header(message), message


def intake_event_store(network_dir: Path, topic: str = events_topic("intake")) -> EventStore:
    """An event store signing as intake (``svc:intake``) with the network folder's real key."""
    owner, key_id = INTAKE, signing_key_id(INTAKE)
    signer = EnvelopeSigner(owner, key_id, load_service_signing_key(network_dir, "intake"))
    return EventStore(Sealer(signer), owner, "intake", key_id, topic)


def sealed_intake_event(message: Message, keys: NetworkRoutingKeys, occurred_at: int) -> NewEvent:
    """An intake event to append: its payload as the routing section under the current network routing key."""
    event_type, version, payload = INTAKE_EVENTS.encode(message)
    return NewEvent(event_type, version, {SectionKind.ROUTING: (keys.current(), payload)},
                    occurred_at_unix_micros=occurred_at)


@dataclass(frozen=True)
class ReadEvent:
    """One of the referral service's stored events, verified and opened."""

    stream_id: str
    sequence: int
    event_type: str
    producer_org: str
    routing_key_id: str
    message: Any  # the decoded payload (a message of referral/v1/events.proto)


def referral_events(engine: sa.Engine, network_dir: Path, directory: Directory,
                    stream_prefix: str = "") -> list[ReadEvent]:
    """Every event in the store (optionally of streams starting with ``stream_prefix``), in append order."""
    keys, verifier, opener = load_routing_keys(network_dir), Verifier(directory, workers=1), Opener()
    query = sa.select(events_table.c.stream_id, events_table.c.envelope).order_by(events_table.c.position)
    if stream_prefix:
        query = query.where(events_table.c.stream_id.startswith(stream_prefix))
    found = []
    with Session(engine) as session:
        rows = list(session.execute(query))
    for stream_id, wire in rows:
        envelope = verifier.verify(bytes(wire))
        section = envelope.section(SectionKind.ROUTING)
        payload = opener.open(envelope, SectionKind.ROUTING, keys.key(section.key_id))
        header = envelope.header
        found.append(ReadEvent(stream_id, header.stream_sequence, header.event_type, header.producer_org,
                               section.key_id, REFERRAL_EVENTS.decode(header.event_type, header.schema_version,
                                                                      payload)))
    verifier.close()
    return found


def apply_all(application: ReferralApplication, engine: sa.Engine,
              items: Iterable[tuple[EventHeader, Message]]) -> None:
    """Apply intake events one transaction each, as the worker would."""
    for header, message in items:
        with unit_of_work(engine) as session:
            application.apply_intake_event(session, header, message)
